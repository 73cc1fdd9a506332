"""Training utilities: device, seeding, in-memory batches, a ``fit`` loop and ``encode``.

The loop is deliberately small so a notebook can show it::

    for x, y in loader:                 # augmented batches, on the device
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()

Everything else here (progress bars, history, checkpoint/resume) is bookkeeping.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .codes import sign
from .transforms import prepare

__all__ = [
    "select_device",
    "seed_everything",
    "progress_enabled",
    "BatchLoader",
    "History",
    "fit",
    "embed",
    "encode",
]


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def progress_enabled() -> bool:
    """Progress bars for humans; silent when ``CI`` is set (stable notebook outputs)."""
    return not os.environ.get("CI") and not os.environ.get("HASHLIB_EDU_NO_PROGRESS")


class BatchLoader:
    """Mini-batches from in-memory uint8 images, augmented as whole batches.

    Args:
        images: ``(n, h, w, 3)`` uint8 (numpy or torch).
        labels: ``(n,)`` class ids or ``(n, c)`` multi-hot.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (order depends only on ``seed`` and the epoch,
            so a resumed run sees the same batches as an uninterrupted one).
        augment: random pad-and-crop and horizontal flip.
        drop_last: drop a last incomplete batch (keeps batch statistics stable).
        device: where batches are sent (default: CPU).

    Iterating yields ``(x, y)`` with ``x (b, 3, h, w)`` normalized float32.
    Call ``set_epoch(e)`` before each epoch (``fit`` does).
    """

    def __init__(self, images, labels, batch_size: int = 128, shuffle: bool = True,
                 augment: bool = False, drop_last: bool = False, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        self.images = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
        self.labels = torch.as_tensor(np.asarray(labels)) if not torch.is_tensor(labels) else labels
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels.")
        if len(self.images) == 0:
            raise ValueError("BatchLoader got no images.")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive; got {batch_size}.")
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.drop_last, self.seed, self.epoch = drop_last, seed, 0
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if self.device.type == "cuda":  # keep the whole set on the GPU: no per-batch copies
            self.images, self.labels = self.images.to(self.device), self.labels.to(self.device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.images)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size].to(self.images.device)
            x = prepare(self.images[idx], augment=self.augment, generator=gen, device=self.device)
            yield x, self.labels[idx].to(self.device)


@dataclass
class History:
    """Per-epoch records of a ``fit`` run."""

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    @property
    def train_seconds(self) -> float:
        return float(sum(self.seconds))


def _save_checkpoint(path: Path, model, loss_fn, optimizer, scheduler, history, epoch) -> None:
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "loss_fn": loss_fn.state_dict() if isinstance(loss_fn, nn.Module) else None,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": asdict(history),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # an interrupted save never leaves a broken checkpoint


def fit(model: nn.Module, loss_fn: Callable, loader: Iterable, epochs: int,
        optimizer: torch.optim.Optimizer, scheduler=None, scheduler_step: str = "batch",
        device: str | torch.device | None = None, checkpoint: str | os.PathLike | None = None,
        progress: bool | None = None, on_epoch_end: Callable | None = None,
        desc: str = "train") -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch ``History``.

    Args:
        model: maps a batch ``x`` to what ``loss_fn`` takes (logits, relaxed codes...).
        loss_fn: ``loss_fn(model(x), y) -> scalar``; an ``nn.Module`` loss with
            parameters (e.g. DPAH anchors) is moved to the device and checkpointed
            (put its parameters in the optimizer yourself).
        loader: yields ``(x, y)`` batches; a ``BatchLoader`` gets ``set_epoch``.
        optimizer, scheduler: built by the caller; ``scheduler_step`` is ``"batch"``
            (one-cycle) or ``"epoch"``.
        checkpoint: file saved after every epoch; if it exists, training resumes
            from it (same result as an uninterrupted run).
        progress: tqdm bars (default: on, except when ``CI`` is set).
        on_epoch_end: ``f(epoch, model) -> dict | None``; a dict is stored in
            ``history.metrics``.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0; got {epochs}.")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError("scheduler_step must be 'batch' or 'epoch'.")
    device = select_device(device)
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    history, start_epoch = History(), 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        if isinstance(loss_fn, nn.Module) and state["loss_fn"] is not None:
            loss_fn.load_state_dict(state["loss_fn"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History(**state["history"])
        start_epoch = state["epoch"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    show = progress_enabled() if progress is None else progress
    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, epochs), desc=desc, disable=not show, leave=False,
               initial=start_epoch, total=epochs)
    for epoch in bar:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        model.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(model(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch}: lower the learning rate.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        history.seconds.append(time.perf_counter() - t0)
        history.loss.append(total / max(count, 1))
        history.lr.append(float(optimizer.param_groups[0]["lr"]))
        extra = on_epoch_end(epoch, model) if on_epoch_end is not None else None
        history.metrics.append(extra or {})
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
        if ckpt is not None:
            _save_checkpoint(ckpt, model, loss_fn, optimizer, scheduler, history, epoch + 1)
    bar.close()
    return history


@torch.no_grad()
def embed(model: nn.Module, images, batch_size: int = 1000,
          fn: Callable | None = None) -> torch.Tensor:
    """Real-valued code-layer outputs for uint8 images, in eval mode, on the model's device.

    Args:
        model: a hashing model; ``model.embed(x)`` is used when it exists, else ``model(x)``.
        images: ``(n, h, w, 3)`` uint8.
        fn: optional ``fn(model, x)`` to call instead (e.g. pooled features).

    Returns:
        ``(n, k)`` float32 tensor on the CPU.
    """
    images = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    call = fn or (lambda m, x: m.embed(x) if hasattr(m, "embed") else m(x))
    out = [call(model, prepare(images[i:i + batch_size], device=device)).float().cpu()
           for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def backbone_features(model: nn.Module, images, batch_size: int = 1000,
                      normalize: bool = False) -> torch.Tensor:
    """Features ``(n, d)`` of ``model.backbone`` (for the CNNBH network: the 1,024-D "Pool3"),
    in eval mode, on the CPU; ``normalize=True`` scales each row to unit L2 norm (as the
    baselines of notebook 02 hash them).

    Args:
        model: a network with a ``.backbone`` (``CNNBHNet``, ``HashNet``).
        images: ``(n, h, w, 3)`` uint8.
    """
    if not hasattr(model, "backbone"):
        raise ValueError(f"{type(model).__name__} has no .backbone to take features from.")
    feats = embed(model, images, batch_size, fn=lambda m, x: m.backbone(x).flatten(1))
    return F.normalize(feats, dim=1) if normalize else feats


def encode(model: nn.Module, images, batch_size: int = 1000, threshold: float = 0.0) -> np.ndarray:
    """Binary codes ``(n, k)`` int8 in ``{-1, +1}``: ``sign(embed(x) - threshold)``, ``sign(0)=+1``.

    ``threshold=0.5`` for sigmoid-relaxed outputs in ``(0, 1)``.
    """
    return sign(embed(model, images, batch_size) - threshold)
