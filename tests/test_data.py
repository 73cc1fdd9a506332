"""hashlib_edu.data: image-folder and torchvision-format loaders, cache, errors, protocols."""

from __future__ import annotations

import pickle
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hashlib_edu.data as data
from hashlib_edu.data import (
    CACHE_NAME,
    CIFAR10_CLASSES,
    DataNotFoundError,
    ProtocolData,
    load_cifar10,
    load_image_folder,
    load_protocol,
    make_synthetic,
    split,
    validation_split,
)

BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# ------------------------------------------------------------------ helpers


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _write_batches(folder: Path, rows: np.ndarray, labels: np.ndarray,
                   sizes=(10_000,) * 5 + (10_000,), meta: bool = True) -> None:
    """torchvision's ``cifar-10-batches-py``: pickled dicts with ``data (n, 3072)`` uint8 in
    row-major CHW and ``labels`` a list; ``rows``/``labels`` are cut into the six batches."""
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for name, n in zip(BATCH_NAMES, sizes, strict=True):
        batch = {"batch_label": name, "data": rows[start:start + n],
                 "labels": labels[start:start + n].tolist(),
                 "filenames": [f"{i}.png" for i in range(start, start + n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
        start += n
    if meta:
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 10_000,
                         "num_vis": 3072}, f)


@pytest.fixture(scope="module")
def fake_batches(tmp_path_factory):
    """A full-size (60,000 image) torchvision-format folder with known content.

    Labels are shuffled inside each part, and every image stamps its position in the
    original files (0..59999) into pixel (0, 0): R = index // 256, G = index % 256,
    B = 0 for training and 255 for test images -- so the canonical order can be
    checked image by image.
    """
    rng = np.random.default_rng(123)
    n = 60_000
    rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    index = np.arange(n)
    rows[:, 0] = index // 256            # R plane, pixel (0, 0)
    rows[:, 1024] = index % 256          # G plane, pixel (0, 0)
    rows[:, 2048] = np.where(index < 50_000, 0, 255)  # B plane, pixel (0, 0)
    labels = np.concatenate([rng.permutation(np.repeat(np.arange(10), 5000)),
                             rng.permutation(np.repeat(np.arange(10), 1000))])
    folder = tmp_path_factory.mktemp("batches") / "cifar-10-batches-py"
    _write_batches(folder, rows, labels)
    return folder, rows, labels


def _root_with(tmp_path: Path, batches: Path) -> Path:
    """A fresh root whose cifar-10-batches-py links to the shared fake folder."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-batches-py").symlink_to(batches, target_is_directory=True)
    return root


# ------------------------------------------------------------ image folders


def test_load_image_folder_exact_pixels_and_order(tmp_path):
    rng = np.random.default_rng(0)
    tree = tmp_path / "tree"
    expected = {}
    for name, count in (("zebra", 2), ("ant", 3), ("cow", 1)):
        for i in range(count):
            img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            # written out of order: files are taken in sorted file-name order
            _write_png(tree / name / f"{count - i:04d}.png", img)
            expected[(name, count - i)] = img
    (tree / "ant" / "README.txt").write_text("not an image")

    ds = load_image_folder(tree)
    assert ds.classes == ("ant", "cow", "zebra")  # sorted by name
    assert ds.images.dtype == np.uint8 and ds.images.shape == (6, 6, 5, 3)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 2, 2])
    want = [expected[("ant", 1)], expected[("ant", 2)], expected[("ant", 3)],
            expected[("cow", 1)], expected[("zebra", 1)], expected[("zebra", 2)]]
    np.testing.assert_array_equal(ds.images, np.stack(want))
    assert ds.n_train is None and len(ds) == 6

    ordered = load_image_folder(tree, classes=("zebra", "cow", "ant"))
    np.testing.assert_array_equal(ordered.labels, [0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(ordered.images[0], expected[("zebra", 1)])


def test_load_image_folder_grayscale_becomes_rgb(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    Image.fromarray(gray, mode="L").save(_mk(tmp_path / "t" / "a") / "0.png")
    ds = load_image_folder(tmp_path / "t")
    assert ds.images.shape == (1, 4, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(ds.images[0, :, :, c], gray)


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_image_folder(tmp_path / "nowhere")

    tree = tmp_path / "tree"
    _write_png(tree / "a" / "0.png", np.zeros((4, 4, 3), np.uint8))
    _write_png(tree / "b" / "0.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="unexpected.*'b'") as err:
        load_image_folder(tree, classes=("a", "c"))
    assert "'c'" in str(err.value)  # the missing one is named too

    _mk(tree / "c")
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(tree)

    shutil.rmtree(tree / "c")
    _write_png(tree / "b" / "1.png", np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="differ in size"):
        load_image_folder(tree)

    (tree / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="Could not decode"):
        load_image_folder(tree)


# ------------------------------------------------- torchvision-format source


def test_load_cifar10_batches_canonical_order_and_cache(tmp_path, fake_batches):
    folder, rows, labels = fake_batches
    root = _root_with(tmp_path, folder)

    ds = load_cifar10(root, download=False)
    assert ds.images.shape == (60_000, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (60_000,) and ds.labels.dtype == np.int64
    assert ds.classes == CIFAR10_CLASSES and ds.n_train == 50_000
    assert "cifar-10-batches-py" in ds.source

    # expected order built independently: per part, per class, original order
    lab = labels.tolist()
    expected = np.array(
        [i for c in range(10) for i in range(50_000) if lab[i] == c]
        + [i for c in range(10) for i in range(50_000, 60_000) if lab[i] == c])
    np.testing.assert_array_equal(ds.labels, labels[expected])
    stamped = ds.images[:, 0, 0, 0].astype(np.int64) * 256 + ds.images[:, 0, 0, 1]
    np.testing.assert_array_equal(stamped, expected)
    np.testing.assert_array_equal(ds.images[:50_000, 0, 0, 2], 0)
    np.testing.assert_array_equal(ds.images[50_000:, 0, 0, 2], 255)
    # CHW rows -> HWC pixels: channel c of pixel (y, x) is rows[j, c*1024 + y*32 + x]
    for i in (1, 777, 49_999, 50_000, 59_999):
        j = expected[i]
        for y, x, c in ((3, 5, 0), (31, 0, 1), (17, 30, 2), (0, 31, 2)):
            assert ds.images[i, y, x, c] == rows[j, c * 1024 + y * 32 + x]
    # (np.array_equal: np.testing's reporting is slow on 184 MB arrays)
    assert np.array_equal(ds.images, rows[expected].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))

    cache = root / CACHE_NAME
    assert ds.info["cache"] == str(cache) and cache.is_file()
    again = load_cifar10(root, download=False)
    assert again.info.get("cache") == str(cache) and "decode_seconds" not in again.info
    assert np.array_equal(again.images, ds.images)
    assert np.array_equal(again.labels, ds.labels)
    assert again.classes == ds.classes and again.source == ds.source


def test_load_cifar10_read_only_root_caches_in_user_dir(tmp_path, fake_batches, monkeypatch):
    folder, _, _ = fake_batches
    root = _root_with(tmp_path, folder)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    real = data._is_writable
    # tests run as root, where chmod does not stop writes: pretend the root is read-only
    monkeypatch.setattr(data, "_is_writable",
                        lambda d: False if Path(d).resolve() == root.resolve() else real(d))

    ds = load_cifar10(root, download=False)
    assert not (root / CACHE_NAME).exists()
    cache = Path(ds.info["cache"])
    assert cache.is_file() and xdg in cache.parents and cache.name == CACHE_NAME

    again = load_cifar10(root, download=False)
    assert again.info["cache"] == str(cache)
    np.testing.assert_array_equal(again.images[::997], ds.images[::997])


def test_load_cifar10_incomplete_or_damaged_batches(tmp_path):
    folder = tmp_path / "a" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in BATCH_NAMES[:3]:
        (folder / name).write_bytes(b"")
    with pytest.raises(DataNotFoundError, match="data_batch_4, data_batch_5, test_batch"):
        load_cifar10(tmp_path / "a", download=False)

    # a truncated pickle
    folder = tmp_path / "b" / "cifar-10-batches-py"
    _write_batches(folder, np.zeros((60, 3072), np.uint8), np.zeros(60, np.int64),
                   sizes=(10,) * 6)
    blob = (folder / "data_batch_1").read_bytes()
    (folder / "data_batch_1").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="data_batch_1"):
        load_cifar10(tmp_path / "b", download=False)

    # a batch whose labels do not match its images, or lack entirely
    _write_batches(folder, np.zeros((60, 3072), np.uint8), np.zeros(60, np.int64),
                   sizes=(10,) * 6)
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 9}, f)
    with pytest.raises(ValueError, match="data_batch_2.*10 images but 9 labels"):
        load_cifar10(tmp_path / "b", download=False)
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({"data": np.zeros((10, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match="data_batch_2.*labels"):
        load_cifar10(tmp_path / "b", download=False)

    # a truncated batches.meta
    _write_batches(folder, np.zeros((60, 3072), np.uint8), np.zeros(60, np.int64),
                   sizes=(10,) * 6)
    blob = (folder / "batches.meta").read_bytes()
    (folder / "batches.meta").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="batches.meta"):
        load_cifar10(tmp_path / "b", download=False)

    # complete files but far too few images: an error, not a partial dataset
    folder = tmp_path / "c" / "cifar-10-batches-py"
    _write_batches(folder, np.zeros((60, 3072), np.uint8), np.arange(60) % 10, sizes=(10,) * 6)
    with pytest.raises(ValueError, match="does not hold CIFAR-10"):
        load_cifar10(tmp_path / "c", download=False)
    assert not (tmp_path / "c" / CACHE_NAME).exists()


# ------------------------------------------------------ image-folder source


@pytest.fixture
def tiny_cifar(monkeypatch):
    """Shrink CIFAR-10 to 5 training and 2 test images per class (constants are looked up
    at call time), so a JPEG tree can be written in a test."""
    monkeypatch.setattr(data, "N_TRAIN", 50)
    monkeypatch.setattr(data, "N_TEST", 20)

    def check(images, labels, where):
        if images.shape != (70, 32, 32, 3) or images.dtype != np.uint8 or labels.shape != (70,):
            raise ValueError(f"{where} does not hold CIFAR-10 (shape {images.shape})")

    monkeypatch.setattr(data, "_check_cifar10", check)


def _colour(part: str, label: int, i: int) -> tuple[int, int, int]:
    return (20 + 20 * label, 40 + 30 * i, 60 if part == "train" else 200)


def _write_jpeg_tree(root: Path, per_class=None) -> None:
    per_class = per_class or {"train": 5, "test": 2}
    for part, n in per_class.items():
        for label, name in enumerate(CIFAR10_CLASSES):
            d = _mk(root / part / name)
            for i in range(n):
                img = np.empty((32, 32, 3), np.uint8)
                img[:] = _colour(part, label, i)
                Image.fromarray(img).save(d / f"{i:04d}.jpg", quality=95)


def test_load_cifar10_jpeg_tree(tmp_path, tiny_cifar):
    root = tmp_path / "jpg"
    _write_jpeg_tree(root)
    ds = load_cifar10(root, download=False)
    assert ds.images.shape == (70, 32, 32, 3) and ds.n_train == 50
    assert "JPEG" in ds.source
    want_labels = np.concatenate([np.repeat(np.arange(10), 5), np.repeat(np.arange(10), 2)])
    np.testing.assert_array_equal(ds.labels, want_labels)
    want = [_colour("train", c, i) for c in range(10) for i in range(5)]
    want += [_colour("test", c, i) for c in range(10) for i in range(2)]
    got = ds.images.reshape(70, -1, 3).mean(axis=1)
    np.testing.assert_allclose(got, np.array(want, float), atol=3)  # JPEG is lossy

    assert ds.info["cache"] == str(root / CACHE_NAME)
    again = load_cifar10(root, download=False)
    assert "cache" in again.info and "decode_seconds" not in again.info
    np.testing.assert_array_equal(again.images, ds.images)


def test_load_cifar10_prefers_batches_over_jpeg_tree(tmp_path, tiny_cifar):
    root = tmp_path / "both"
    _write_jpeg_tree(root)
    rows = np.full((70, 3072), 7, np.uint8)
    _write_batches(root / "cifar-10-batches-py", rows, np.arange(70) % 10,
                   sizes=(10, 10, 10, 10, 10, 20))
    ds = load_cifar10(root, download=False)
    assert "batches" in ds.source
    assert np.all(ds.images == 7)


def test_load_cifar10_jpeg_tree_errors(tmp_path, tiny_cifar):
    root = tmp_path / "wrong"
    _write_jpeg_tree(root)
    (root / "train" / "airplane").rename(root / "train" / "airplanes")
    with pytest.raises(ValueError, match="airplanes") as err:
        load_cifar10(root, download=False)
    assert "'airplane'" in str(err.value)

    root = tmp_path / "short"
    _write_jpeg_tree(root)
    (root / "test" / "cat" / "0001.jpg").unlink()
    with pytest.raises(ValueError, match="not a complete CIFAR-10 test set"):
        load_cifar10(root, download=False)

    root = tmp_path / "truncated"
    _write_jpeg_tree(root)
    jpg = root / "train" / "dog" / "0003.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])
    with pytest.raises(ValueError, match="0003.jpg"):
        load_cifar10(root, download=False)
    assert not (root / CACHE_NAME).exists()


# ------------------------------------------------------------ nothing found


def test_load_cifar10_nothing_found_names_both_fixes(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DataNotFoundError) as err:
        load_cifar10(root, download=False)
    msg = str(err.value)
    assert str(root) in msg
    assert "download=True" in msg                       # fix 1: with internet
    assert "train/<class>" in msg and "HASHLIB_EDU_DATA" in msg  # fix 2: offline copy
    assert isinstance(err.value, FileNotFoundError)


def test_load_cifar10_download_failure_is_reported(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    # a stand-in torchvision whose download fails (no network use, no slow import)
    fake = types.SimpleNamespace(datasets=types.SimpleNamespace(CIFAR10=offline))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    with pytest.raises(DataNotFoundError, match="download failed.*network is unreachable") as err:
        load_cifar10(tmp_path, download=True)
    assert "download=True" in str(err.value) and "HASHLIB_EDU_DATA" in str(err.value)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("HASHLIB_EDU_DATA", str(tmp_path / "d"))
    assert data.default_data_root() == tmp_path / "d"
    monkeypatch.delenv("HASHLIB_EDU_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert data.default_data_root() == tmp_path / "c" / "hashlib_edu" / "data"


# ---------------------------------------------------------------- protocols


def _per_class(labels, idx, n_classes=10):
    return np.bincount(labels[idx], minlength=n_classes)


def test_split_cifar10_1k(cifar_like_labels):
    labels = cifar_like_labels
    q, t, db = split(labels, "cifar10-1k", seed=0)
    assert (len(q), len(t), len(db)) == (1000, 5000, 59_000)
    for idx in (q, t, db):
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, unique
    assert np.all(_per_class(labels, q) == 100)
    assert np.all(_per_class(labels, t) == 500)
    assert np.intersect1d(q, t).size == 0
    assert np.intersect1d(q, db).size == 0
    np.testing.assert_array_equal(np.union1d(q, db), np.arange(60_000))
    assert np.all(np.isin(t, db))  # training images are in the database
    assert (q >= 50_000).any() and (q < 50_000).any()  # queries come from all 60,000

    q2, t2, db2 = split(labels, "cifar10-1k", seed=0)
    for a, b in ((q, q2), (t, t2), (db, db2)):
        np.testing.assert_array_equal(a, b)
    q3, t3, _ = split(labels, "cifar10-1k", seed=1)
    assert not np.array_equal(q, q3) and not np.array_equal(t, t3)


def test_split_cifar10_dsh(cifar_like_labels):
    labels = cifar_like_labels
    q, t, db = split(labels, "cifar10-dsh", seed=0)
    np.testing.assert_array_equal(q, np.arange(50_000, 60_000))
    np.testing.assert_array_equal(t, np.arange(50_000))
    np.testing.assert_array_equal(db, t)
    assert np.intersect1d(q, db).size == 0
    assert np.all(_per_class(labels, q) == 1000) and np.all(_per_class(labels, t) == 5000)
    for other in split(labels, "cifar10-dsh", seed=7):  # fixed split: seed does not matter
        assert other.dtype == np.int64
    np.testing.assert_array_equal(split(labels, "cifar10-dsh", seed=7)[0], q)
    # other sizes need the boundary
    with pytest.raises(ValueError, match="n_train"):
        split(labels[:1000], "cifar10-dsh")
    q, t, db = split(labels[:1000], "cifar10-dsh", n_train=800)
    assert (len(q), len(t), len(db)) == (200, 800, 800)


def test_split_errors(cifar_like_labels):
    with pytest.raises(ValueError) as err:
        split(cifar_like_labels, "cifar100")
    assert "cifar100" in str(err.value)
    assert "cifar10-1k" in str(err.value) and "cifar10-dsh" in str(err.value)
    with pytest.raises(ValueError, match="600"):
        split(np.repeat(np.arange(10), 100), "cifar10-1k")
    with pytest.raises(ValueError, match="shape"):
        split(cifar_like_labels.reshape(-1, 2), "cifar10-1k")


# ---------------------------------------------------------------- synthetic


def test_make_synthetic_shape_and_determinism():
    a = make_synthetic(n_per_class=5, n_classes=3, size=8, seed=4)
    assert a.images.shape == (15, 8, 8, 3) and a.images.dtype == np.uint8
    assert a.labels.dtype == np.int64
    np.testing.assert_array_equal(a.labels, np.repeat(np.arange(3), 5))
    assert a.classes == ("class0", "class1", "class2")
    b = make_synthetic(n_per_class=5, n_classes=3, size=8, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    c = make_synthetic(n_per_class=5, n_classes=3, size=8, seed=5)
    assert not np.array_equal(a.images, c.images)
    # class-conditional: images are closer to their own class mean than to others
    means = np.stack([a.images[a.labels == k].reshape(5, -1).mean(0) for k in range(3)])
    flat = a.images.reshape(15, -1).astype(float)
    nearest = np.argmin(((flat[:, None] - means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, a.labels)


@pytest.mark.parametrize("kwargs", [{"n_per_class": 0}, {"n_classes": 1}, {"size": 2}])
def test_make_synthetic_bad_input(kwargs):
    with pytest.raises(ValueError):
        make_synthetic(**kwargs)


# ------------------------------------------------------------------ protocol data


def test_load_protocol_on_a_dataset(smoke_data):
    data = load_protocol("cifar10-1k", dataset=smoke_data, seed=0)
    assert isinstance(data, ProtocolData) and data.profile == "smoke"
    sizes = data.sizes()
    assert sizes == {"query": 100, "train": 500, "database": 2000}
    assert np.intersect1d(data.query_idx, data.db_idx).size == 0
    assert np.all(np.isin(data.train_idx, data.db_idx))
    for part in ("query", "train"):
        assert np.all(np.bincount(data.part_labels(part), minlength=4) == sizes[part] // 4)
    assert data.images("train").shape == (500, 32, 32, 3)
    with pytest.raises(ValueError, match="part"):
        data.images("test")
    again = load_protocol("cifar10-1k", dataset=smoke_data, seed=0)
    for a, b in zip(data.split, again.split, strict=True):
        np.testing.assert_array_equal(a, b)
    full = load_protocol("cifar10-1k", profile="quick", dataset=smoke_data, seed=0)
    assert full.sizes() == {"query": 400, "train": 2000, "database": 2000}


# ------------------------------------------------------------------ validation split


def _validation_problem():
    """Training indices (shuffled, a subset of the dataset) of 3 unequal classes: 50, 120, 230
    images (10% of each: 5, 12, 23, no rounding ties)."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat([0, 1, 2, 3], [80, 150, 260, 40]))
    train = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n]
                            for c, n in ((0, 50), (1, 120), (2, 230))])
    return rng.permutation(train), labels


def test_validation_split_is_a_disjoint_class_balanced_partition():
    train, labels = _validation_problem()
    rest, val = validation_split(train, labels, seed=0, fraction=0.1)
    assert rest.dtype == np.int64 and val.dtype == np.int64
    assert np.all(np.diff(rest) > 0) and np.all(np.diff(val) > 0)  # sorted, no repeats
    assert np.intersect1d(rest, val).size == 0
    np.testing.assert_array_equal(np.union1d(rest, val), np.sort(train))
    assert len(rest) + len(val) == len(train)
    for c in np.unique(labels[train]):
        n_c = int(np.sum(labels[train] == c))
        assert int(np.sum(labels[val] == c)) == round(0.1 * n_c)
        assert int(np.sum(labels[rest] == c)) == n_c - round(0.1 * n_c)
    assert [int(np.sum(labels[val] == c)) for c in (0, 1, 2)] == [5, 12, 23]
    assert not np.isin(val, np.flatnonzero(labels == 3)).any()  # class 3 is not in train
    # another fraction: 30% of each class
    _, val30 = validation_split(train, labels, seed=0, fraction=0.3)
    assert [int(np.sum(labels[val30] == c)) for c in (0, 1, 2)] == [15, 36, 69]


def test_validation_split_is_deterministic_per_seed():
    train, labels = _validation_problem()
    rest, val = validation_split(train, labels, seed=0)
    rest2, val2 = validation_split(train.copy(), labels, seed=0)
    np.testing.assert_array_equal(rest, rest2)
    np.testing.assert_array_equal(val, val2)
    # the order of the training indices does not matter, only the seed
    rest3, val3 = validation_split(np.sort(train), labels, seed=0)
    np.testing.assert_array_equal(val, val3)
    np.testing.assert_array_equal(rest, rest3)
    other_rest, other_val = validation_split(train, labels, seed=1)
    assert not np.array_equal(val, other_val) and not np.array_equal(rest, other_rest)
    assert len(other_val) == len(val)  # same class counts


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_validation_split_rejects_a_fraction_outside_0_1(fraction):
    train, labels = _validation_problem()
    with pytest.raises(ValueError, match="fraction"):
        validation_split(train, labels, fraction=fraction)


def test_validation_split_rejects_bad_indices():
    train, labels = _validation_problem()
    with pytest.raises(ValueError, match="repeated"):
        validation_split(np.concatenate([train, train[:1]]), labels)
    with pytest.raises(ValueError, match="outside"):
        validation_split(np.append(train, len(labels)), labels)
    with pytest.raises(ValueError, match="outside"):
        validation_split(np.append(train, -1), labels)
    with pytest.raises(ValueError, match="integer"):
        validation_split(train.astype(float), labels)
    with pytest.raises(ValueError, match="1-D"):
        validation_split(train[None, :], labels)


def test_validation_split_rejects_a_class_with_a_single_image():
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(ValueError, match="class 2 has 1 training image"):
        validation_split(np.arange(7), labels)
    # two images of a class are enough: one held out
    rest, val = validation_split(np.arange(6), labels, fraction=0.1)
    assert len(val) == 2 and len(rest) == 4


def test_validation_protocol_holds_out_training_images_only():
    ds = data.make_synthetic(n_per_class=30, n_classes=4, seed=1)
    full = data.ProtocolData(
        ds, "toy", np.arange(0, 120, 10), np.setdiff1d(np.arange(120), np.arange(0, 120, 10)),
        np.arange(120), "quick")
    val = data.validation_protocol(full, fraction=0.2, seed=3)
    assert val.protocol == "toy-val"
    assert np.array_equal(val.train_idx, val.db_idx)
    assert not np.intersect1d(val.query_idx, val.train_idx).size
    assert np.array_equal(np.union1d(val.query_idx, val.train_idx), full.train_idx)
    assert not np.intersect1d(val.query_idx, full.query_idx).size  # protocol queries untouched
    counts = np.bincount(ds.labels[val.query_idx], minlength=4)
    assert counts.min() == counts.max() > 0  # class-balanced
    again = data.validation_protocol(full, fraction=0.2, seed=3)
    assert np.array_equal(again.query_idx, val.query_idx)
    with pytest.raises(ValueError, match="already a validation protocol"):
        data.validation_protocol(val)
