"""CIFAR-10 in memory, the course's retrieval protocols, and a synthetic stand-in.

``load_cifar10()`` returns all 60,000 images as one uint8 array in a canonical
order -- the 50,000 training images first, grouped by class label (0..9), in
their original order inside each class; then the 10,000 test images likewise --
so a protocol split is the same whichever source the pixels came from:

1. a decoded cache this module wrote itself (``cifar10-hashlib_edu.npz``),
2. torchvision's ``<root>/cifar-10-batches-py`` (the official pickles),
3. an image-folder tree ``<root>/train/<class>/*.jpg`` and ``<root>/test/<class>/*.jpg``
   (as in the course's offline tarball, a JPEG copy of the official images),
4. else a torchvision download into ``<root>`` (needs internet).

It also holds the protocols' splits as in-memory :class:`ProtocolData`
(:func:`load_protocol`, with small subsets under the ``smoke`` profile) and the
class-balanced :func:`validation_split` of a training set that settings are chosen on.

Safety: the official pickles are read by a restricted unpickler that builds numpy arrays,
lists, dicts and strings only (a batch asking for anything else is refused, naming the file);
the decoded cache is an ``npz`` read without pickle, written to a temporary name and renamed
into place, and rebuilt from the source when it is damaged.

This module is pure numpy/PIL: no networks, no torch at import time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_savez
from .profiles import get_profile

__all__ = [
    "CIFAR10_CLASSES",
    "PROTOCOLS",
    "ImageDataset",
    "DataNotFoundError",
    "default_data_root",
    "load_cifar10",
    "load_image_folder",
    "split",
    "validation_split",
    "ProtocolData",
    "load_protocol",
    "validation_protocol",
    "make_synthetic",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGE_SHAPE",
    "check_images",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
N_TRAIN, N_TEST = 50_000, 10_000
CACHE_NAME = "cifar10-hashlib_edu.npz"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
#: Channel statistics of the official CIFAR-10 training set (the JPEG copy differs by < 0.01).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: The ``(height, width, channels)`` of every image the course trains on.
IMAGE_SHAPE = (32, 32, 3)

PROTOCOLS: dict[str, str] = {
    "cifar10-1k": "CNNBH/DPAH: 100 queries per class from all 60,000 images; 500 training "
    "images per class from the rest; database = the 59,000 non-query images",
    "cifar10-dsh": "DSH: queries = the 10,000 official test images; "
    "training = database = the 50,000 official training images",
}


class DataNotFoundError(FileNotFoundError):
    """CIFAR-10 is neither on disk nor downloadable; the message says how to fix it."""


@dataclass
class ImageDataset:
    """Images and labels held in memory.

    Attributes:
        images: ``(n, h, w, 3)`` uint8, RGB.
        labels: ``(n,)`` int64 class ids in ``0..len(classes)-1``.
        classes: class names, index = label.
        source: where the pixels came from (shown in notebooks: JPEG vs official).
        n_train: the first ``n_train`` images are the official training set
            (``None`` when the dataset has no official split).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str = "unknown"
    n_train: int | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"ImageDataset({len(self)} images {tuple(self.images.shape[1:])}, "
            f"{len(self.classes)} classes, source={self.source!r})"
        )


# --------------------------------------------------------------------- roots


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hashlib_edu"


def default_data_root() -> Path:
    """``$HASHLIB_EDU_DATA`` if set, else ``~/.cache/hashlib_edu/data`` (per user)."""
    env = os.environ.get("HASHLIB_EDU_DATA")
    return Path(env).expanduser() if env else _user_cache_dir() / "data"


def _is_writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
        return True
    except OSError:
        return False


def _cache_candidates(root: Path) -> list[Path]:
    """Where a decoded cache may live: in the root, else in the user cache dir."""
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return [root / CACHE_NAME, _user_cache_dir() / "decoded" / key / CACHE_NAME]


# ------------------------------------------------------------------- sources


def _load_cache(path: Path) -> ImageDataset:
    with np.load(path, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"].astype(np.int64)
        classes = tuple(str(c) for c in z["classes"])
        source = str(z["source"])
    _check_cifar10(images, labels, f"cache {path}")
    return ImageDataset(images, labels, classes, source=source, n_train=N_TRAIN)


def _write_cache(ds: ImageDataset, root: Path) -> Path | None:
    for path in _cache_candidates(root):
        if not _is_writable(path.parent):
            continue
        atomic_savez(path, images=ds.images, labels=ds.labels,
                     classes=np.array(ds.classes), source=np.array(ds.source))
        return path
    return None


#: What an official CIFAR-10 pickle may ask the unpickler to build: numpy arrays (as numpy
#: 1.x and 2.x pickle them) and bytes; everything else is refused unrun.
_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {}


def _pickle_globals() -> dict[tuple[str, str], Any]:
    if not _PICKLE_GLOBALS:
        try:
            from numpy._core.multiarray import _reconstruct
            from numpy._core.numeric import _frombuffer
        except ImportError:  # numpy 1.x
            from numpy.core.multiarray import _reconstruct
            from numpy.core.numeric import _frombuffer
        import _codecs

        for module in ("numpy.core", "numpy._core"):
            _PICKLE_GLOBALS[(f"{module}.multiarray", "_reconstruct")] = _reconstruct
            _PICKLE_GLOBALS[(f"{module}.numeric", "_frombuffer")] = _frombuffer
        _PICKLE_GLOBALS.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                ("_codecs", "encode"): _codecs.encode,
                                ("builtins", "bytes"): bytes,
                                ("builtins", "bytearray"): bytearray})
    return _PICKLE_GLOBALS


class _RefusedPickle(pickle.UnpicklingError):
    """A pickle asked for an object an official CIFAR-10 file never holds."""


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what the official pickles hold (numpy arrays, dicts, lists, strings)."""

    def find_class(self, module: str, name: str) -> Any:
        found = _pickle_globals().get((module, name))
        if found is None:
            raise _RefusedPickle(f"it asks to build {module}.{name}, which no official "
                                 "CIFAR-10 file holds")
        return found


def _read_pickle(path: Path) -> Any:
    """One official CIFAR-10 pickle (``latin1`` strings), through :class:`_CifarUnpickler`.

    Raises:
        ValueError: naming the file, when it is damaged or asks for anything but plain data
            (nothing it asks for is run).
    """
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="latin1").load()
    except _RefusedPickle as exc:
        raise ValueError(
            f"Refused to read {path}: {exc}, so it is not the official CIFAR-10 (nothing in it "
            "was run). Delete the folder and download again (load_cifar10(download=True)), or "
            "use the image-folder copy."
        ) from None
    except Exception as exc:  # truncated or not a pickle
        raise ValueError(
            f"Could not read CIFAR-10 file {path} ({exc.__class__.__name__}: {exc}). "
            "The file is damaged: delete the folder and download again."
        ) from exc


def _canonical_order(labels: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Permutation putting train before test, grouped by label, stable inside a class."""
    return np.lexsort((np.arange(len(labels)), labels, is_test))


def _load_batches(folder: Path) -> ImageDataset:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{folder} is incomplete: missing {', '.join(missing)}. Delete the folder and "
            "download again (load_cifar10(download=True)), or point root at a complete copy."
        )
    images, labels, is_test = [], [], []
    for n in names:
        batch = _read_pickle(folder / n)
        try:
            if not isinstance(batch, dict) or np.asarray(batch["data"]).dtype == object:
                raise ValueError("not a dict of a uint8 data array and a label list")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            batch_labels = np.asarray(batch["labels"], dtype=np.int64)
            if batch_labels.shape != (len(data),):
                raise ValueError(f"{len(data)} images but {batch_labels.size} labels")
        except Exception as exc:  # truncated pickle, wrong content
            raise ValueError(
                f"Could not read CIFAR-10 batch {folder / n} ({exc.__class__.__name__}: {exc}). "
                "The file is damaged: delete the folder and download again."
            ) from exc
        images.append(data.transpose(0, 2, 3, 1))
        labels.append(batch_labels)
        is_test.append(np.full(len(data), n == "test_batch"))
    images_a, labels_a, test_a = (np.concatenate(x) for x in (images, labels, is_test))
    order = _canonical_order(labels_a, test_a)
    meta_path = folder / "batches.meta"
    classes = CIFAR10_CLASSES
    if meta_path.is_file():
        meta = _read_pickle(meta_path)
        try:
            classes = tuple(str(name) for name in meta["label_names"])
        except Exception as exc:  # truncated pickle, wrong content
            raise ValueError(
                f"Could not read {meta_path} ({exc.__class__.__name__}: {exc}). "
                "The file is damaged: delete the folder and download again."
            ) from exc
    return ImageDataset(np.ascontiguousarray(images_a[order]), labels_a[order], classes,
                        source="torchvision cifar-10-batches-py (official, lossless)",
                        n_train=N_TRAIN)


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:
        raise ValueError(
            f"Could not decode image {path} ({exc.__class__.__name__}: {exc}). "
            "The archive may be truncated: extract it again."
        ) from exc


def load_image_folder(
    root: str | os.PathLike, classes: tuple[str, ...] | None = None
) -> ImageDataset:
    """Load an image-folder tree ``root/<class>/<image>`` into memory.

    Classes are sorted by name unless ``classes`` gives their order; files are
    taken in sorted file-name order. All images must share one size.

    Returns:
        ImageDataset with ``images (n, h, w, 3)`` uint8 and ``labels (n,)``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"Image folder {root} does not exist.")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not found:
        raise ValueError(
            f"{root} holds no class folders: an image folder is laid out as "
            f"{root}/<class>/<image> (e.g. {root}/cat/0001.png). Move each class's images "
            "into a folder named after the class."
        )
    if classes is None:
        classes = tuple(found)
    unknown = sorted(set(found) - set(classes))
    missing = [c for c in classes if c not in found]
    if unknown or missing:
        raise ValueError(
            f"Class folders under {root} do not match the expected classes: "
            f"missing {missing or 'none'}, unexpected {unknown or 'none'}. "
            f"Expected exactly: {', '.join(classes)}."
        )
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise ValueError(f"Class folder {root / name} holds no images.")
        images.extend(_decode(p) for p in files)
        labels.extend([label] * len(files))
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"Images under {root} differ in size {sorted(shapes)[:3]}; resize them "
                         "all to one size first (e.g. with PIL: Image.open(p).resize((32, 32))).")
    return ImageDataset(np.stack(images), np.asarray(labels, dtype=np.int64), tuple(classes),
                        source=f"image folder {root}")


def _load_jpeg_tree(root: Path) -> ImageDataset:
    parts = {}
    for part, expected in (("train", N_TRAIN // 10), ("test", N_TEST // 10)):
        ds = load_image_folder(root / part, CIFAR10_CLASSES)
        counts = np.bincount(ds.labels, minlength=10)
        if not np.all(counts == expected) or ds.images.shape[1:] != (32, 32, 3):
            raise ValueError(
                f"{root / part} is not a complete CIFAR-10 {part} set: found {counts.tolist()} "
                f"images per class of shape {ds.images.shape[1:]}, expected {expected} per class "
                "of 32x32x3. Extract the archive again (it may be truncated)."
            )
        parts[part] = ds
    images = np.concatenate([parts["train"].images, parts["test"].images])
    labels = np.concatenate([parts["train"].labels, parts["test"].labels])
    return ImageDataset(images, labels, CIFAR10_CLASSES,
                        source="image-folder JPEG copy (lossy; pixels differ slightly from the official set)",
                        n_train=N_TRAIN)


def _check_cifar10(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.shape != (60_000, 32, 32, 3) or images.dtype != np.uint8 or labels.shape != (60_000,):
        raise ValueError(f"{where} does not hold CIFAR-10 (shape {images.shape}); delete it and reload.")


def load_cifar10(root: str | os.PathLike | None = None, download: bool = True,
                 verbose: bool = False) -> ImageDataset:
    """Load all 60,000 CIFAR-10 images into memory, in the canonical order.

    Args:
        root: data folder; default ``$HASHLIB_EDU_DATA``, else ``~/.cache/hashlib_edu/data``.
        download: fall back to ``torchvision.datasets.CIFAR10(download=True)`` into ``root``.
        verbose: print where the data came from and how long it took.

    Returns:
        ImageDataset with ``images`` uint8 ``(60000, 32, 32, 3)``, ``labels`` int64
        ``(60000,)``, ``classes`` (the 10 names), ``source`` and ``n_train=50000``:
        indices ``0..49999`` are the official training images, ``50000..59999``
        the test images; within each, grouped by label, original order inside a class.

    Raises:
        DataNotFoundError: nothing found under ``root`` and the download failed.
        ValueError: a source is present but incomplete or damaged.
    """
    root = Path(root).expanduser() if root is not None else default_data_root()
    start = time.perf_counter()
    for cache in _cache_candidates(root):
        if cache.is_file():
            try:
                ds = _load_cache(cache)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                warnings.warn(f"The decoded CIFAR-10 cache {cache} is damaged "
                              f"({exc.__class__.__name__}: {exc}); rebuilding it from the "
                              "source (delete it by hand if this repeats).", stacklevel=2)
                continue
            ds.info = {"cache": str(cache), "seconds": time.perf_counter() - start}
            if verbose:
                print(f"CIFAR-10 from cache {cache} ({ds.info['seconds']:.1f} s); source: {ds.source}")
            return ds
    batches = root / "cifar-10-batches-py"
    if batches.is_dir():
        ds = _load_batches(batches)
    elif (root / "train").is_dir() or (root / "test").is_dir():
        ds = _load_jpeg_tree(root)
    else:
        download_error = None
        if download:
            try:
                import torchvision

                torchvision.datasets.CIFAR10(str(root), train=True, download=True)
                torchvision.datasets.CIFAR10(str(root), train=False, download=True)
            except Exception as exc:  # no internet, proxy, disk full...
                download_error = f"{exc.__class__.__name__}: {exc}"
        if download and download_error is None and batches.is_dir():
            ds = _load_batches(batches)
        else:
            raise DataNotFoundError(
                f"CIFAR-10 not found under {root} (looked for a usable {CACHE_NAME}, "
                f"cifar-10-batches-py/ and train/<class>/, test/<class>/ image folders)"
                + (f"; the download failed ({download_error})" if download_error else
                   "; download=False")
                + ".\nFix it one of two ways:\n"
                "  1. with internet: load_cifar10(root, download=True) fetches the official set;\n"
                "  2. offline: extract an image-folder copy (e.g. cifar10-jpg.tar.gz) so that "
                "<root>/train/<class>/*.jpg and <root>/test/<class>/*.jpg exist, and set "
                "HASHLIB_EDU_DATA=<root> or pass root=."
            )
    _check_cifar10(ds.images, ds.labels, str(root))
    decode_seconds = time.perf_counter() - start
    cache_path = _write_cache(ds, root)
    ds.info = {"decode_seconds": decode_seconds, "cache": str(cache_path) if cache_path else None}
    if verbose:
        print(f"CIFAR-10 decoded from {ds.source} in {decode_seconds:.1f} s; cached at {cache_path}")
    return ds


# ----------------------------------------------------------------- protocols


def split(labels: np.ndarray, protocol: str, seed: int = 0,
          n_train: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices into ``(query, train, database)`` for a retrieval protocol.

    Args:
        labels: ``(n,)`` class ids in the canonical order of :func:`load_cifar10`.
        protocol: ``"cifar10-1k"`` or ``"cifar10-dsh"`` (see ``PROTOCOLS``).
        seed: random seed (``cifar10-1k`` only; ``cifar10-dsh`` is fixed).
        n_train: number of official training images at the front (default: 50,000
            for 60,000 labels).

    Returns:
        Three sorted int64 index arrays ``query``, ``train``, ``database``.

    * ``cifar10-1k``: 100 queries per class drawn from all images; 500 training
      images per class from the rest; database = every non-query image (the
      training images included): 1,000 / 5,000 / 59,000 on CIFAR-10.
    * ``cifar10-dsh``: queries = official test images; training = database =
      official training images: 10,000 / 50,000 / 50,000.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"split() takes (n,) class ids; got shape {labels.shape}.")
    if protocol == "cifar10-1k":
        rng = np.random.default_rng(seed)
        query, train = [], []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            if len(idx) < 600:
                raise ValueError(f"cifar10-1k needs >= 600 images of class {c}; found {len(idx)}.")
            perm = rng.permutation(idx)
            query.append(perm[:100])
            train.append(perm[100:600])
        q = np.sort(np.concatenate(query))
        t = np.sort(np.concatenate(train))
        db = np.setdiff1d(np.arange(len(labels)), q)
        return q.astype(np.int64), t.astype(np.int64), db.astype(np.int64)
    if protocol == "cifar10-dsh":
        n_train = N_TRAIN if n_train is None and len(labels) == N_TRAIN + N_TEST else n_train
        if n_train is None or not 0 < n_train < len(labels):
            raise ValueError(
                "cifar10-dsh needs the official train/test boundary: the first n_train images "
                f"must be the training set and the rest the test set (got n_train={n_train} "
                f"for {len(labels)} images). For load_protocol, give the dataset it "
                "(ImageDataset(..., n_train=N), or dataset.n_train = N; load_cifar10() sets "
                "it); for split, pass split(labels, 'cifar10-dsh', n_train=N).")
        t = np.arange(n_train, dtype=np.int64)
        return np.arange(n_train, len(labels), dtype=np.int64), t, t.copy()
    raise ValueError(f"Unknown protocol {protocol!r}. Known protocols: "
                     + "; ".join(f"{k!r} ({v})" for k, v in PROTOCOLS.items()))


def validation_split(train: np.ndarray, labels: np.ndarray, seed: int = 0,
                     fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split the training indices ``train`` into ``(train, validation)``: disjoint,
    class-balanced (``round(fraction * n_c)`` of each class's ``n_c`` training images, at
    least one, go to validation), deterministic given ``seed``, both sorted.

    Settings are chosen on the validation part (its images as queries against the remaining
    training images), never on the protocol's queries.

    Args:
        train: ``(n,)`` int indices into ``labels`` (a protocol's training set).
        labels: ``(N,)`` class ids of the whole dataset.
        seed: random seed of the draw.
        fraction: share of each class held out, in ``(0, 1)``.

    Returns:
        ``(train, validation)`` int64 index arrays.
    """
    train = np.asarray(train)
    labels = np.asarray(labels)
    if train.ndim != 1 or not np.issubdtype(train.dtype, np.integer):
        raise ValueError("train must be a 1-D array of integer indices into labels.")
    if len(np.unique(train)) != len(train):
        raise ValueError("train holds repeated indices; pass each training image once.")
    if len(train) and (train.min() < 0 or train.max() >= len(labels)):
        raise ValueError(f"train indexes outside labels (length {len(labels)}).")
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1; got {fraction}.")
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels[train]):
        idx = np.sort(train[labels[train] == c])
        if len(idx) < 2:
            raise ValueError(f"class {c} has {len(idx)} training image(s); need at least 2 "
                             "to hold one out for validation.")
        n_val = min(max(1, round(fraction * len(idx))), len(idx) - 1)
        held.append(rng.permutation(idx)[:n_val])
    validation = np.sort(np.concatenate(held)).astype(np.int64) if held else np.zeros(0, np.int64)
    rest = np.setdiff1d(train, validation).astype(np.int64)
    return rest, validation


#: Sizes of the tiny ``smoke`` subsets (CI runs notebooks in seconds).
SMOKE_SIZES = {"query": 100, "train": 500, "database": 2000}


@dataclass
class ProtocolData:
    """One protocol's split of an in-memory dataset.

    Attributes:
        dataset: all images and labels (``dataset.images (N, 32, 32, 3)`` uint8).
        protocol: protocol name, e.g. ``"cifar10-1k"``.
        query_idx, train_idx, db_idx: int64 indices into ``dataset``.
        profile: the profile these indices were made for (``smoke`` subsamples).
    """

    dataset: ImageDataset
    protocol: str
    query_idx: np.ndarray
    train_idx: np.ndarray
    db_idx: np.ndarray
    profile: str
    seed: int = 0

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels

    def images(self, part: str) -> np.ndarray:
        """uint8 images of ``"query"``, ``"train"`` or ``"database"``."""
        return self.dataset.images[self._idx(part)]

    def part_labels(self, part: str) -> np.ndarray:
        return self.dataset.labels[self._idx(part)]

    def _idx(self, part: str) -> np.ndarray:
        parts = {"query": self.query_idx, "train": self.train_idx, "database": self.db_idx}
        if part not in parts:
            raise ValueError(f"part must be one of {sorted(parts)}; got {part!r}.")
        return parts[part]

    @property
    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.query_idx, self.train_idx, self.db_idx

    def sizes(self) -> dict[str, int]:
        return {"query": len(self.query_idx), "train": len(self.train_idx),
                "database": len(self.db_idx)}


def _subsample(idx: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Class-balanced subsample of ``n`` indices (sorted)."""
    if len(idx) <= n:
        return idx
    classes = np.unique(labels[idx])
    per = max(n // len(classes), 1)
    picked = [rng.permutation(idx[labels[idx] == c])[:per] for c in classes]
    return np.sort(np.concatenate(picked))


def check_images(images: np.ndarray, labels: np.ndarray, where: str = "the dataset") -> None:
    """Check images and labels where they enter the course (:func:`load_protocol`): images
    ``(n, 32, 32, 3)`` uint8 (:data:`IMAGE_SHAPE`), labels ``(n,)`` integer class ids.

    Raises:
        ValueError: saying what is wrong and how to fix it (e.g. resize the images).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        h, w, c = IMAGE_SHAPE
        raise ValueError(
            f"Images of {where} have shape {images.shape}; the course's networks take "
            f"(n, {h}, {w}, {c}) RGB images. Resize them first, e.g. "
            f"np.stack([np.asarray(Image.fromarray(im).convert('RGB').resize(({w}, {h}))) "
            "for im in images]) with PIL's Image.")
    if images.dtype != np.uint8:
        raise ValueError(f"Images of {where} are {images.dtype}; the course takes uint8 pixels "
                         "in 0..255 (e.g. (x * 255).round().astype(np.uint8) from floats in "
                         "[0, 1]).")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Labels of {where} are {labels.dtype} of shape {labels.shape}; the course takes "
            f"one integer class id per image, shape ({len(images)},). Drop unlabelled images "
            "(NaN labels) and convert with labels.astype(np.int64).")


def load_protocol(protocol: str = "cifar10-1k", profile: str | None = None, seed: int = 0,
                  dataset: ImageDataset | None = None, root=None) -> ProtocolData:
    """CIFAR-10 (or ``dataset``) split by ``protocol``; under ``smoke``, small class-balanced
    subsets (100 queries, 500 training, 2,000 database images) so CI runs in seconds.

    ``dataset`` must hold ``images (n, 32, 32, 3)`` uint8 and ``labels (n,)`` integer class
    ids (:func:`check_images`), and for ``cifar10-dsh`` its ``n_train``."""
    profile = get_profile(profile)
    ds = dataset if dataset is not None else load_cifar10(root)
    check_images(ds.images, ds.labels, where=ds.source)
    q, t, db = split(ds.labels, protocol, seed=seed, n_train=ds.n_train)
    if profile == "smoke":
        rng = np.random.default_rng(seed)
        q = _subsample(q, ds.labels, SMOKE_SIZES["query"], rng)
        t = _subsample(t, ds.labels, SMOKE_SIZES["train"], rng)
        db = np.union1d(t, _subsample(np.setdiff1d(db, t), ds.labels,
                                      SMOKE_SIZES["database"] - len(t), rng))
        if protocol == "cifar10-dsh":
            db = t.copy()
    return ProtocolData(ds, protocol, q, t, db, profile, seed)


def validation_protocol(data: ProtocolData, fraction: float = 0.1, seed: int = 0) -> ProtocolData:
    """The protocol on which settings are chosen: ``data``'s training images split by
    :func:`validation_split`; the validation images are the queries, the remaining training
    images both the training set and the database. The protocol's queries and database are
    never touched.

    Its name is ``"<protocol>-val"`` (e.g. ``"cifar10-1k-val"``), so its checkpoints and
    ``results/<protocol>-val/`` never mix with the headline runs.

    Returns:
        A :class:`ProtocolData` with ``query_idx`` the validation indices and ``train_idx`` =
        ``db_idx`` the rest, all indices into ``data.dataset``.
    """
    if data.protocol.endswith("-val"):
        raise ValueError(f"{data.protocol!r} is already a validation protocol; split the "
                         "protocol it came from instead.")
    train, validation = validation_split(data.train_idx, data.labels, seed=seed, fraction=fraction)
    return ProtocolData(data.dataset, f"{data.protocol}-val", validation, train, train.copy(),
                        data.profile, data.seed)


# ----------------------------------------------------------------- synthetic


def make_synthetic(n_per_class: int = 100, n_classes: int = 4, size: int = 32,
                   seed: int = 0, noise: float = 40.0) -> ImageDataset:
    """A small class-conditional image set so tests never need CIFAR-10.

    Each class is a fixed random colour pattern (a smooth 4x4 template, upsampled)
    plus per-image Gaussian noise and a random brightness shift, so a small CNN
    separates classes within a couple of epochs while chance mAP is ``1/n_classes``.

    Returns:
        ImageDataset with ``images (n_per_class * n_classes, size, size, 3)`` uint8,
        labels grouped by class.
    """
    if n_per_class <= 0 or n_classes <= 1 or size < 4:
        raise ValueError("make_synthetic needs n_per_class > 0, n_classes > 1 and size >= 4.")
    rng = np.random.default_rng(seed)
    templates = rng.uniform(40, 215, size=(n_classes, 4, 4, 3))
    templates = templates.repeat(size // 4 + 1, axis=1).repeat(size // 4 + 1, axis=2)[:, :size, :size]
    labels = np.repeat(np.arange(n_classes), n_per_class)
    images = templates[labels] + rng.normal(0, noise, size=(len(labels), size, size, 3))
    images += rng.normal(0, 15, size=(len(labels), 1, 1, 1))
    images = np.clip(images, 0, 255).astype(np.uint8)
    classes = tuple(f"class{c}" for c in range(n_classes))
    return ImageDataset(images, labels.astype(np.int64), classes, source=f"synthetic(seed={seed})")
