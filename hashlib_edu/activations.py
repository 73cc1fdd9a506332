"""Activation cache: a pretrained backbone's activations at a cut point, computed once.

Fine-tuning only the last stage of an ImageNet backbone (the ``finetune-last`` regime), or
training heads on its frozen pooled features (``frozen``), never changes what the frozen part
computes. So the frozen part runs once per image -- for all 60,000 CIFAR-10 images and for the
mirror images of the training set (the only augmentation the cached regimes use) -- and its
outputs are kept on disk in half precision:

    frozen, tail, dim = split_pretrained("efficientnet_lite0", "last-stage")
    acts = cached_activations(dataset, "efficientnet_lite0", "last-stage")   # (N, 192, 7, 7)

A cache file is named by a digest of (backbone, cut, input size, the images it covers, mirror),
lives in ``<output root>/cache/activations/`` (git-ignored; a temporary folder under
``smoke``), is filled chunk by chunk (an interrupted run resumes where it stopped), and is read
back memory-mapped. On a GPU the frozen part runs in float16 autocast; on the CPU in float32
with channels-last memory, the fastest exact PyTorch path measured on a 2-core machine
(about twice eager's speed).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import CUTS, split_pretrained
from .data import ImageDataset
from .profiles import output_root
from .training import EpochBatches, prepare, progress_enabled, select_device

__all__ = ["activation_cache_path", "cached_activations", "compute_activations",
           "ActivationLoader"]


def _images_digest(images: np.ndarray) -> str:
    """Cheap fingerprint of a uint8 image stack: its shape and a strided sample of pixels."""
    h = hashlib.sha1(str(images.shape).encode())
    step = max(1, len(images) // 512)
    h.update(np.ascontiguousarray(images[::step]).tobytes())
    return h.hexdigest()[:10]


def activation_cache_path(backbone: str, cut: str, size: int, images: np.ndarray,
                          mirror: bool = False, profile: str | None = None) -> Path:
    """Where :func:`cached_activations` keeps the activations of ``images``."""
    key = json.dumps([backbone, cut, int(size), _images_digest(images), bool(mirror)])
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return (output_root(profile) / "cache" / "activations"
            / f"{backbone}-{cut}-{int(size)}px{'-mirror' if mirror else ''}-{digest}.npy")


@torch.no_grad()
def compute_activations(frozen: nn.Module, images: np.ndarray, out: np.ndarray, start: int = 0,
                        batch_size: int = 50, mirror: bool = False, device=None,
                        progress: bool | None = None, done_file: Path | None = None) -> None:
    """Run ``frozen`` on ``images[start:]`` batch by batch and write the results into ``out``.

    Args:
        frozen: maps CIFAR-normalized ``(n, 3, 32, 32)`` batches to activations (the first part
            of :func:`~hashlib_edu.backbones.split_pretrained`).
        images: ``(n, 32, 32, 3)`` uint8.
        out: ``(n, ...)`` array (e.g. a float16 memmap) the activations are written into.
        mirror: flip every image left-right first.
        done_file: a text file updated with the number of finished images after every batch
            (what lets an interrupted run resume).
    """
    device = select_device(device)
    frozen.eval().to(device)
    cpu = device.type == "cpu"
    if cpu:
        frozen.to(memory_format=torch.channels_last)
    from tqdm.auto import tqdm

    show = progress_enabled() if progress is None else progress
    bar = tqdm(total=len(images), initial=start, desc="activations", disable=not show,
               leave=False)
    for i in range(start, len(images), batch_size):
        x = prepare(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])),
                    device=device)
        if mirror:
            x = x.flip(3)
        if cpu:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.float16, enabled=not cpu):
            a = frozen(x)
        out[i:i + len(x)] = a.float().cpu().numpy().astype(out.dtype)
        if done_file is not None:
            if hasattr(out, "flush"):
                out.flush()
            done_file.write_text(str(i + len(x)))
        bar.update(len(x))
    bar.close()


def cached_activations(dataset: ImageDataset | np.ndarray, backbone: str = "efficientnet_lite0",
                       cut: str = "last-stage", size: int = 224, indices: np.ndarray | None = None,
                       mirror: bool = False, device=None, batch_size: int = 50,
                       progress: bool | None = None, profile: str | None = None) -> np.ndarray:
    """The activations of ``backbone`` at ``cut`` for ``dataset.images[indices]`` (all images
    when ``indices`` is ``None``), computed once and cached on disk in float16.

    Args:
        dataset: an :class:`~hashlib_edu.data.ImageDataset` (or a uint8 ``(N, 32, 32, 3)``
            array).
        backbone, cut, size: see :func:`~hashlib_edu.backbones.split_pretrained`.
        mirror: the activations of the left-right mirrored images (the cached regimes'
            augmentation for training images).
        batch_size: images per forward pass.

    Returns:
        A read-only float16 memmap ``(n, ...)`` (``(n, 1280)`` for ``cut="pooled"``,
        ``(n, 192, 7, 7)`` for ``"last-stage"`` at 224 px), row ``i`` for ``indices[i]``.
    """
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {CUTS}; got {cut!r}.")
    images = dataset.images if isinstance(dataset, ImageDataset) else np.asarray(dataset)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError("cached_activations takes uint8 images (N, h, w, 3) or an ImageDataset; "
                         f"got {images.dtype} {images.shape}.")
    if indices is not None:
        images = images[np.asarray(indices)]
    path = activation_cache_path(backbone, cut, size, images, mirror, profile)
    done_file = path.with_suffix(".done")
    done = int(done_file.read_text()) if done_file.is_file() else 0
    if path.is_file() and done >= len(images):
        return np.load(path, mmap_mode="r")
    frozen, _, _ = split_pretrained(backbone, cut, size)
    probe = prepare(torch.from_numpy(images[:1].copy()))
    with torch.no_grad():
        shape = tuple(frozen.eval()(probe).shape[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and done > 0:
        out = np.load(path, mmap_mode="r+")
        if out.shape != (len(images), *shape):
            raise ValueError(f"{path} holds {out.shape}, not {(len(images), *shape)}: delete it "
                             "and its .done file to recompute.")
    else:
        done = 0
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16,
                                        shape=(len(images), *shape))
    compute_activations(frozen, images, out, start=done, batch_size=batch_size, mirror=mirror,
                        device=device, progress=progress, done_file=done_file)
    del out
    return np.load(path, mmap_mode="r")


class ActivationLoader(EpochBatches):
    """Mini-batches of cached activations, optionally augmented by mirror images.

    Args:
        activations: ``(n, ...)`` float16/float32 activations of the training images.
        labels: ``(n,)`` class ids or ``(n, c)`` multi-hot.
        mirrored: ``(n, ...)`` activations of the same images mirrored, or ``None``; with it,
            each item of a batch comes from the mirrored copy with probability 1/2.
        batch_size, shuffle, drop_last, seed, device: as :class:`~hashlib_edu.training.BatchLoader`
            (the order depends only on ``seed`` and the epoch, so a resumed run sees the same
            batches).

    Iterating yields ``(x, y)`` with ``x`` float32 on ``device``.
    """

    def __init__(self, activations, labels, mirrored=None, batch_size: int = 128,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0,
                 device=None) -> None:
        if len(activations) != len(labels):
            raise ValueError(f"{len(activations)} activations but {len(labels)} labels.")
        if mirrored is not None and np.shape(mirrored) != np.shape(activations):
            raise ValueError("mirrored must have the shape of activations.")
        if len(activations) == 0:
            raise ValueError("ActivationLoader got no activations.")
        super().__init__(len(activations), batch_size, shuffle, drop_last, seed, device)
        self.activations, self.mirrored = activations, mirrored
        self.labels = torch.as_tensor(np.asarray(labels))

    def __iter__(self):
        for order, gen in self.index_batches():
            idx = np.sort(order.numpy())  # sorted: contiguous reads from a memory map
            x = torch.from_numpy(np.asarray(self.activations[idx], dtype=np.float32))
            if self.mirrored is not None:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                if bool(flip.any()):
                    m = torch.from_numpy(np.asarray(self.mirrored[idx], dtype=np.float32))
                    x = torch.where(flip.view(-1, *([1] * (x.ndim - 1))), m, x)
            yield x.to(self.device), self.labels[idx].to(self.device)
