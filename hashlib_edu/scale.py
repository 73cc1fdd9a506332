"""Hashing at scale (notebook 08): a million learned codes, more drawn like them, sharding.

* :func:`trained_model` -- the course's headline 48-bit model (CNNBH under the profile's
  schedule), trained once or loaded; the one place that knows how a model is obtained.
* :func:`augmented_database` -- the protocol's database images encoded as they are and then
  again under random crops, flips and colour changes (:func:`augment`) until the database holds
  ``n_codes`` codes, labels kept; cached once under the profile's output root
  (``cache/scale/``, git-ignored; a temporary folder under ``smoke``) with what it cost.
* :func:`synthetic_codes` -- more codes drawn to match the learned codes' per-class bit
  probabilities (marked synthetic), for databases beyond what we encode.
* :func:`sharded_flat_index` -- the database split over faiss ``IndexBinaryShards``.
* :data:`SCALE_SIZES` -- how large each profile goes.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .codes import pack_codes
from .data import ProtocolData
from .profiles import get_profile, output_root
from .training import (
    mixed_precision_dtype,
    normalize,
    progress_enabled,
    random_crop_flip,
    state_digest,
    to_float,
)

__all__ = ["SCALE_SIZES", "trained_model", "augment", "CodeDatabase", "encode_packed", "query_codes",
           "augmented_database", "synthetic_codes", "sharded_flat_index", "best_time",
           "scale_sizes"]

#: Per profile: codes encoded from real (augmented) images, the largest database (the rest
#: synthetic), and the database sizes notebook 08 times its indexes at.
SCALE_SIZES = {"smoke": {"learned": 10_000, "total": 20_000, "timing": [2_000, 20_000]},
               "quick": {"learned": 1_000_000, "total": 10_000_000,
                         "timing": [10**4, 10**5, 10**6, 10**7]},
               "paper": {"learned": 1_000_000, "total": 10_000_000,
                         "timing": [10**4, 10**5, 10**6, 10**7]}}


def trained_model(data: ProtocolData, bits: int = 48, seed: int = 0, epochs: int | None = None,
                  device=None, progress: bool | None = None) -> tuple[torch.nn.Module, dict]:
    """The course's headline ``bits``-bit CNNBH model on ``data`` under its profile's schedule
    (the one notebooks 02, 03 and 07 use; ``epochs`` overrides it): a finished checkpoint
    loads, else it trains.

    Returns:
        ``(model, info)``: the model in eval mode on the CPU and a dict with ``method``,
        ``bits``, ``epochs``, ``train_seconds`` (spent training in this call or recorded
        in the checkpoint) and ``precision``.
    """
    from .experiment import Experiment, run

    result = run(Experiment("cnnbh", bits, data.protocol, profile=data.profile, seed=seed,
                            epochs=epochs), data=data, device=device, progress=progress)
    model, history = result.model, result.history
    info = {"method": "cnnbh", "bits": bits, "epochs": history.epochs,
            "train_seconds": history.train_seconds,
            "precision": getattr(history, "precision", None) or "float32"}
    return model.cpu().eval(), info


# --------------------------------------------------------------------------- augmentation


def augment(images: torch.Tensor, generator: torch.Generator, colour: float = 0.4,
            padding: int = 4) -> torch.Tensor:
    """Random colour change, crop and flip of a uint8 ``(n, h, w, 3)`` batch -> normalized
    ``(n, 3, h, w)`` floats, as the model's input.

    Colour: brightness, contrast and saturation each scaled by a factor drawn uniformly from
    ``[1 - colour, 1 + colour]`` (per image); then a crop of the image padded by ``padding``
    pixels and a horizontal flip with probability 1/2 (:func:`~hashlib_edu.training.random_crop_flip`).
    """
    x = to_float(images)
    n = x.shape[0]

    def factor() -> torch.Tensor:
        return (1 + colour * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)).to(x)

    x = x * factor()  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean  # contrast
    gray = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = ((x - gray) * factor() + gray).clamp_(0, 1)  # saturation
    return random_crop_flip(normalize(x), padding=padding, generator=generator)


def encode_packed(model: torch.nn.Module) -> tuple[Callable[[torch.Tensor], np.ndarray], str]:
    """``(encode, precision)``: ``encode(x)`` maps normalized inputs ``(n, 3, h, w)`` to packed
    codes ``(n, ceil(k/8))`` uint8 (bit 1 where the knob is ``>= 0``), in channels-last layout
    and, on a CPU with bfloat16 units, in bfloat16 (``precision`` says which): about five times
    faster than float32 here, with a few bits near 0 landing on the other side."""
    model = copy.deepcopy(model).cpu().eval().to(memory_format=torch.channels_last)
    dtype = mixed_precision_dtype("cpu")

    @torch.no_grad()
    def encode(x: torch.Tensor) -> np.ndarray:
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            h = model.embed(x).float()
        return pack_codes((h >= 0).numpy().astype(np.uint8))

    return encode, "float32" if dtype is None else str(dtype).replace("torch.", "")


def query_codes(model: torch.nn.Module, data: ProtocolData, part: str = "query") -> np.ndarray:
    """Packed codes of ``data``'s ``part`` images as they are, encoded as the database is
    (:func:`encode_packed`)."""
    encode, _ = encode_packed(model)
    images = torch.from_numpy(data.images(part))
    return np.concatenate([encode(normalize(to_float(images[i:i + 256])))
                           for i in range(0, len(images), 256)])


# --------------------------------------------------------------------------- the database


@dataclass
class CodeDatabase:
    """Packed codes with their labels and where each came from.

    Attributes:
        codes: ``(n, ceil(bits/8))`` uint8 packed codes.
        labels: ``(n,)`` int64 class ids.
        view: ``(n,)`` int16: 0 for an image as it is, ``v >= 1`` for its ``v``-th augmented
            view, ``-1`` for a synthetic code (drawn, no image).
        source: ``(n,)`` int64 index of the image in ``data.dataset`` (``-1``: synthetic).
        bits: code length.
        info: how it was made (times, model, precision).
    """

    codes: np.ndarray
    labels: np.ndarray
    view: np.ndarray
    source: np.ndarray
    bits: int
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def synthetic(self) -> np.ndarray:
        """``(n,)`` bool: drawn, not encoded from an image."""
        return self.view < 0

    def take(self, rows) -> CodeDatabase:
        """The rows ``rows`` (a slice or an index array) as a new database."""
        return CodeDatabase(self.codes[rows], self.labels[rows], self.view[rows],
                            self.source[rows], self.bits, dict(self.info))

    def concat(self, other: CodeDatabase) -> CodeDatabase:
        if other.bits != self.bits:
            raise ValueError(f"cannot join {self.bits}-bit and {other.bits}-bit codes.")
        return CodeDatabase(*(np.concatenate([getattr(self, f), getattr(other, f)])
                              for f in ("codes", "labels", "view", "source")), self.bits,
                            {**self.info, **other.info})

    def save(self, path: Path) -> None:
        """Write to ``path`` (.npz) through a temporary file renamed into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            np.savez(out, codes=self.codes, labels=self.labels, view=self.view,
                     source=self.source, bits=self.bits, info=json.dumps(self.info))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> CodeDatabase:
        with np.load(path, allow_pickle=False) as f:
            return cls(f["codes"], f["labels"], f["view"], f["source"], int(f["bits"]),
                       json.loads(str(f["info"])))


def _progress_bar(total: int, desc: str, progress: bool | None):
    from tqdm.auto import tqdm

    show = progress_enabled() if progress is None else progress
    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, disable=not show)


def augmented_database(model: torch.nn.Module, data: ProtocolData, n_codes: int,
                       seed: int = 0, batch_size: int = 256,
                       progress: bool | None = None) -> CodeDatabase:
    """The protocol's database images encoded as they are (view 0, in database order), then
    whole rounds of augmented views (:func:`augment`) of every database image, until there are
    at least ``n_codes`` codes.

    Cached under ``<output root>/cache/scale/`` (git-ignored; the temporary output root under
    ``smoke``), keyed by the model's weights, the protocol, the profile, ``n_codes`` and
    ``seed``: the first call encodes (with a progress bar), later ones load in a second.
    ``info`` records ``encode_seconds``, ``images_per_second``, ``precision`` and ``views``.
    """
    images = torch.from_numpy(data.images("database"))
    labels = data.part_labels("database").astype(np.int64)
    n_db = len(images)
    views = max(1, -(-int(n_codes) // n_db))  # whole rounds, the first one unaugmented
    key = (f"{data.protocol}-{data.profile}-{model.n_bits}bits-{state_digest(model)}-"
           f"{views * n_db}-seed{seed}")
    path = output_root(data.profile) / "cache" / "scale" / f"codes-{key}.npz"
    if path.is_file():
        return CodeDatabase.load(path)
    encode, precision = encode_packed(model)
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    start = time.perf_counter()
    with _progress_bar(views * n_db, "encoding views", progress) as bar:
        for view in range(views):
            for i in range(0, n_db, batch_size):
                batch = images[i:i + batch_size]
                x = augment(batch, generator) if view else normalize(to_float(batch))
                chunks.append(encode(x))
                bar.update(len(batch))
    seconds = time.perf_counter() - start
    db = CodeDatabase(np.concatenate(chunks), np.tile(labels, views),
                      np.repeat(np.arange(views, dtype=np.int16), n_db),
                      np.tile(data.db_idx.astype(np.int64), views), model.n_bits,
                      {"encode_seconds": seconds, "images_per_second": views * n_db / seconds,
                       "precision": precision, "views": views, "database_images": n_db,
                       "threads": torch.get_num_threads()})
    db.save(path)
    return db


def synthetic_codes(learned: CodeDatabase, n: int, seed: int = 0,
                    chunk: int = 1_000_000) -> CodeDatabase:
    """``n`` codes drawn to match ``learned``'s bit statistics per class: a class with the
    learned class frequencies, then every bit independently 1 with that class's frequency of
    1 at that bit. Bits are independent given the class (learned codes are not quite), so
    these codes are a stand-in for more images, not images: ``view = source = -1``."""
    bits = learned.bits
    unpacked = np.unpackbits(learned.codes, axis=1, count=bits)
    classes, counts = np.unique(learned.labels, return_counts=True)
    p_one = np.stack([unpacked[learned.labels == c].mean(axis=0) for c in classes])
    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, size=n, p=counts / counts.sum())
    codes = np.empty((n, (bits + 7) // 8), np.uint8)
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        draw = rng.random((rows.stop - start, bits), dtype=np.float32)
        codes[rows] = np.packbits(draw < p_one[np.searchsorted(classes, labels[rows])], axis=1)
    return CodeDatabase(codes, labels.astype(np.int64), np.full(n, -1, np.int16),
                        np.full(n, -1, np.int64), bits, {"synthetic_seed": seed})


def sharded_flat_index(codes: np.ndarray, bits: int, n_shards: int, threaded: bool = True):
    """faiss ``IndexBinaryShards`` over ``n_shards`` exact flat indexes, each holding one
    contiguous part of the packed ``codes``: a search asks every shard (in threads) and merges
    their top lists, as a cluster would ask its machines. Results equal one flat index's."""
    import faiss

    d = 8 * ((bits + 7) // 8)
    shards = faiss.IndexBinaryShards(d, threaded, True)  # successive ids: part j follows j - 1
    parts = []
    for part in np.array_split(np.ascontiguousarray(codes), n_shards):
        sub = faiss.IndexBinaryFlat(d)
        sub.add(np.ascontiguousarray(part))
        shards.add_shard(sub)
        parts.append(sub)
    shards.syncWithSubIndexes()
    shards.parts = parts  # the shards hold pointers: keep the sub-indexes alive with it
    return shards


def best_time(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """``(shortest wall time in seconds over repeat calls, result of the last call)``."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def scale_sizes(profile: str | None = None) -> dict:
    """:data:`SCALE_SIZES` of ``profile`` (default: the current one), a copy."""
    return copy.deepcopy(SCALE_SIZES[get_profile(profile)])
