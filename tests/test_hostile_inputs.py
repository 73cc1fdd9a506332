"""Safe by default: a file a user copied in, a manifest, a server or a killed process never
runs code, escapes its folder, fills the disk, hangs, or leaves a half-written file that
later counts as done; a bad file is named with what to do, and a wrong input is refused
instead of scored.

A "payload" here is a pickle that, if unpickled freely, creates a marker file; every test
that feeds one asserts the marker is absent (and one control shows the payload does work).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import pickle
import shutil
import threading
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook, new_output

from hashlib_edu import course, data, release, report
from hashlib_edu.data import CIFAR10_CLASSES, load_cifar10, load_image_folder, load_protocol
from hashlib_edu.files import atomic_save, atomic_savez_compressed, atomic_write_text
from hashlib_edu.metrics import euclidean_precision_at_n, mean_average_precision
from hashlib_edu.release import (
    MODELS_URL_ENV,
    BundleError,
    ChecksumError,
    ManifestError,
    UnsafeCheckpointError,
)
from hashlib_edu.results import (
    ResultsFileError,
    load_codes,
    load_results,
    result_is_complete,
    result_path,
    save_results,
)

BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


class Payload:
    """Pickles as ``open(marker, "w")``: unpickling it creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(autouse=True)
def _fresh_release(monkeypatch):
    monkeypatch.delenv(MODELS_URL_ENV, raising=False)
    monkeypatch.delenv(release.TRAIN_ENV, raising=False)
    monkeypatch.delenv(release.DEADLINE_ENV, raising=False)
    monkeypatch.setattr(release, "_MANIFESTS", {})
    monkeypatch.setattr(release, "_NOTICED", set())


def test_the_payload_runs_when_unpickled_freely(tmp_path):
    """The control: without the safeguards below, the payload would have run."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker), protocol=2)).close()
    assert marker.exists()


# --------------------------------------------------------------------------- release: bundles


def finished_state(rows: int = 12) -> dict:
    """A finished checkpoint of a tiny network: a ``(rows, 4)`` weight and a bias."""
    return {"model": {"w": torch.ones(rows, 4), "b": torch.zeros(rows)}, "epoch": 1,
            "epochs": 1, "history": {"seconds": [0.5], "loss": [1.0]}, "loss_fn": None}


def publish(folder: Path, files: dict[str, bytes], entries: list[dict] | None = None) -> Path:
    """Write ``files`` and a manifest describing them (or the given ``entries``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    if entries is None:
        entries = [{"name": Path(n).stem, "file": n, "sha256": hashlib.sha256(raw).hexdigest(),
                    "size": len(raw)} for n, raw in files.items()]
    (folder / release.MANIFEST).write_text(json.dumps({"models": entries}))
    return folder


def bundle_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(release.bundle_state(state), buffer)
    return buffer.getvalue()


def test_pack_refuses_a_checkpoint_carrying_a_payload(tmp_path):
    src, marker = tmp_path / "ckpts", tmp_path / "ran"
    src.mkdir()
    torch.save({**finished_state(), "extra": Payload(marker)}, src / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match="evil.pt") as err:
        release.pack(src, tmp_path / "out")
    assert "train it again" in str(err.value)
    assert not marker.exists()
    assert not (tmp_path / "out" / "evil.pt").exists()


def test_a_downloaded_bundle_carrying_a_payload_is_not_loaded_nor_kept(tmp_path):
    marker, dest = tmp_path / "ran", tmp_path / "ckpt" / "evil.pt"
    raw = io.BytesIO()
    torch.save({**release.bundle_state(finished_state()), "extra": Payload(marker)}, raw)
    bundle = publish(tmp_path / "bundle", {"evil.pt": raw.getvalue()})
    with pytest.raises(BundleError, match="evil.pt.*not kept"):
        release.fetch("evil", dest, location=str(bundle))
    assert not marker.exists()
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("file", ["../outside.pt", "sub/outside.pt", "..", "/abs/outside.pt",
                                  "C:\\outside.pt", "..\\outside.pt", ""])
def test_a_manifest_file_outside_its_folder_is_refused_before_anything_is_opened(
        tmp_path, monkeypatch, file):
    raw = bundle_bytes(finished_state())
    (tmp_path / "outside.pt").write_bytes(raw)  # a valid bundle, right sha256, wrong place
    entry = {"name": "m", "file": file, "sha256": hashlib.sha256(raw).hexdigest(),
             "size": len(raw)}
    bundle = publish(tmp_path / "bundle", {}, [entry])
    opened = []
    real_open = release._open
    monkeypatch.setattr(release, "_open", lambda loc, name, *a: opened.append(name)
                        or real_open(loc, name, *a))
    dest = tmp_path / "ckpt" / "m.pt"
    with pytest.raises(ManifestError, match="not a plain file name") as err:
        release.fetch("m", dest, location=bundle.as_uri())
    assert str(bundle / release.MANIFEST) in str(err.value) and "pack" in str(err.value)
    assert opened == [release.MANIFEST]
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_dev_zero_is_never_copied(tmp_path):
    dest = tmp_path / "ckpt" / "m.pt"
    entry = {"name": "m", "file": "/dev/zero", "sha256": "0" * 64, "size": 1000}
    with pytest.raises(ManifestError):
        release.fetch("m", dest, location=str(publish(tmp_path / "a", {}, [entry])))
    # a link inside the folder that leads to a device or out of the folder: not a bundle file
    folder = publish(tmp_path / "b", {}, [{**entry, "file": "m.pt"}])
    (folder / "m.pt").symlink_to("/dev/zero")
    assert release.fetch("m", dest, location=str(folder)) is False
    (tmp_path / "elsewhere.pt").write_bytes(b"x" * 1000)
    (folder / "m.pt").unlink()
    (folder / "m.pt").symlink_to(tmp_path / "elsewhere.pt")
    assert release.fetch("m", dest, location=str(folder)) is False
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("missing", ["file", "sha256", "size", "name"])
def test_an_incomplete_manifest_entry_is_named(tmp_path, missing):
    raw = bundle_bytes(finished_state())
    entry = {"name": "m", "file": "m.pt", "sha256": hashlib.sha256(raw).hexdigest(),
             "size": len(raw)}
    del entry[missing]
    bundle = publish(tmp_path / "bundle", {"m.pt": raw}, [entry])
    with pytest.raises(ManifestError, match=f"lacks {missing}") as err:
        release.fetch("m", tmp_path / "ckpt" / "m.pt", location=str(bundle))
    assert str(bundle / release.MANIFEST) in str(err.value)


def test_a_download_larger_than_its_entry_stops_at_the_size(tmp_path):
    big = tmp_path / "bundle" / "m.pt"
    big.parent.mkdir()
    with open(big, "wb") as f:  # a sparse file far larger than its entry
        f.truncate(1 << 30)
    (big.parent / release.MANIFEST).write_text(json.dumps({"models": [
        {"name": "m", "file": "m.pt", "sha256": "0" * 64, "size": 1000}]}))
    dest = tmp_path / "ckpt" / "m.pt"
    start = time.perf_counter()
    with pytest.raises(ChecksumError, match="more than the manifest's 1000 bytes"):
        release.fetch("m", dest, location=str(big.parent))
    assert time.perf_counter() - start < 1.0
    assert list(dest.parent.iterdir()) == []


def test_a_bundle_under_another_models_name_is_not_kept(tmp_path):
    """A 24-row model published under a 12-row model's name."""
    bundle = publish(tmp_path / "bundle", {"m.pt": bundle_bytes(finished_state(rows=24))})
    dest = tmp_path / "ckpt" / "m.pt"
    want = {"w": (12, 4), "b": (12,)}
    with pytest.raises(BundleError, match=r"w is \(24, 4\) in the bundle, \(12, 4\) in the model"):
        release.fetch("m", dest, location=str(bundle), expected_shapes=want)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(BundleError, match="missing extra"):
        release.fetch("m", dest, location=str(bundle),
                      expected_shapes={"w": (24, 4), "b": (24,), "extra": (1,)})
    assert release.fetch("m", dest, location=str(bundle),
                         expected_shapes={"w": (24, 4), "b": (24,)}) is True
    assert torch.load(dest, weights_only=True)["model"]["w"].shape == (24, 4)


class _Server:
    """A local http server for one test: ``manifest.json`` as given, every other path a slow
    or endless body; it records the paths asked for and stops by itself."""

    def __init__(self, manifest: dict, delay: float, total: int, length: int | None):
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                if self.path.endswith(release.MANIFEST):
                    body = json.dumps(manifest).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                stop = time.monotonic() + 5.0  # never longer, whatever the client does
                sent = 0
                try:
                    while sent < total and time.monotonic() < stop:
                        self.wfile.write(b"x" * 64)
                        self.wfile.flush()
                        sent += 64
                        time.sleep(delay)
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/models"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_drip_fed_download_stops_at_its_deadline(tmp_path, capsys):
    entry = {"name": "m", "file": "m.pt", "sha256": "0" * 64, "size": 10_000}
    server = _Server({"models": [entry]}, delay=0.02, total=10_000, length=10_000)
    dest = tmp_path / "ckpt" / "m.pt"
    try:
        start = time.perf_counter()
        assert release.fetch("m", dest, location=server.url, deadline=0.3) is False
        elapsed = time.perf_counter() - start
    finally:
        server.close()
    assert elapsed < 1.5
    assert "download deadline" in capsys.readouterr().out
    assert list(dest.parent.iterdir()) == []


def test_an_endless_http_stream_stops_at_the_size_and_names_are_sent_plainly(tmp_path):
    entries = [{"name": "m", "file": "m.pt", "sha256": "0" * 64, "size": 1000}]
    server = _Server({"models": entries}, delay=0.0, total=1 << 30, length=None)
    dest = tmp_path / "ckpt" / "m.pt"
    try:
        with pytest.raises(ChecksumError, match="more than the manifest's 1000 bytes"):
            release.fetch("m", dest, location=server.url)
        announced = _Server({"models": entries}, delay=0.0, total=64, length=1 << 30)
        try:
            with pytest.raises(ChecksumError, match="announced as"):
                release.fetch("m", dest, location=announced.url)
        finally:
            announced.close()
        release._MANIFESTS.clear()
        bad = [{**entries[0], "file": "../../etc/passwd"}]
        escaping = _Server({"models": bad}, delay=0.0, total=0, length=0)
        try:
            with pytest.raises(ManifestError):
                release.fetch("m", dest, location=escaping.url)
        finally:
            escaping.close()
    finally:
        server.close()
    assert server.requests == ["/models/manifest.json", "/models/m.pt"]
    assert escaping.requests == ["/models/manifest.json"]  # the '..' name was never sent
    assert list(dest.parent.iterdir()) == []


# --------------------------------------------------------------------------- data


def write_batches(folder: Path, payload: Path | None = None, where: str = "data_batch_1",
                  protocol: int = 2) -> None:
    """Six tiny batches as the official files hold them (protocol 2 pickles of a dict with a
    uint8 array and lists); ``payload`` goes into the file ``where``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in [*BATCH_NAMES, "batches.meta"]:
        obj = ({"label_names": list(CIFAR10_CLASSES)} if name == "batches.meta" else
               {"batch_label": name, "data": np.zeros((10, 3072), np.uint8),
                "labels": list(range(10)), "filenames": [f"{i}.png" for i in range(10)]})
        if name == where and payload is not None:
            obj["extra"] = Payload(payload)
        (folder / name).write_bytes(pickle.dumps(obj, protocol=protocol))


@pytest.mark.parametrize("where", ["data_batch_3", "batches.meta"])
def test_a_cifar_pickle_carrying_a_payload_is_refused_unrun(tmp_path, where):
    marker = tmp_path / "ran"
    write_batches(tmp_path / "root" / "cifar-10-batches-py", marker, where)
    with pytest.raises(ValueError, match=f"Refused to read .*{where}: it asks to build "
                                         r"\S*open, which no official") as err:
        load_cifar10(tmp_path / "root", download=False)
    assert "download again" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_official_style_pickles_still_load(tmp_path, protocol):
    write_batches(tmp_path / "root" / "cifar-10-batches-py", protocol=protocol)
    with pytest.raises(ValueError, match="does not hold CIFAR-10"):  # read, then sized up
        load_cifar10(tmp_path / "root", download=False)


def test_a_damaged_decoded_cache_is_named_and_rebuilt(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_batches(root / "cifar-10-batches-py")
    monkeypatch.setattr(data, "_check_cifar10", lambda *args: None)  # tiny stand-in set
    cache = root / data.CACHE_NAME
    cache.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.warns(UserWarning, match=f"cache {cache} is damaged"):
        ds = load_cifar10(root, download=False)
    assert ds.source.startswith("torchvision") and ds.info["cache"] == str(cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_cifar10(root, download=False)
    assert again.info["cache"] == str(cache) and len(again) == len(ds)
    # no source left: the error names the damaged cache's name, with what to do
    cache.write_bytes(b"damaged")
    shutil.rmtree(root / "cifar-10-batches-py")
    with pytest.warns(UserWarning, match="damaged"), pytest.raises(
            data.DataNotFoundError, match=f"usable {data.CACHE_NAME}"):
        load_cifar10(root, download=False)


def test_images_of_another_size_are_refused_where_they_enter(tmp_path):
    big = data.make_synthetic(n_per_class=5, n_classes=2, size=64)
    with pytest.raises(ValueError, match=r"shape \(10, 64, 64, 3\).*Resize them first"):
        load_protocol("cifar10-1k", "smoke", dataset=big)
    floats = data.make_synthetic(n_per_class=5, n_classes=2)
    floats.labels = floats.labels.astype(float)
    floats.labels[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        load_protocol("cifar10-1k", "smoke", dataset=floats)


def test_an_image_folder_without_class_folders_says_so(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "0001.png").write_bytes(b"")
    with pytest.raises(ValueError, match="no class folders.*<class>/<image>"):
        load_image_folder(tmp_path / "flat")


def test_the_dsh_protocol_error_names_what_load_protocol_takes():
    ds = data.make_synthetic(n_per_class=10, n_classes=2)
    with pytest.raises(ValueError, match="n_train") as err:
        load_protocol("cifar10-dsh", "smoke", dataset=ds)
    assert "dataset.n_train" in str(err.value) and "split(labels" in str(err.value)


# --------------------------------------------------------------------------- metrics


def test_nan_labels_are_refused_not_scored():
    rng = np.random.default_rng(0)
    codes = rng.choice([-1, 1], size=(40, 8))
    labels = rng.integers(0, 3, 40).astype(float)
    assert mean_average_precision(codes[:10], codes, labels[:10], labels) > 0  # control
    labels[[3, 20]] = np.nan
    with pytest.raises(ValueError, match=r"query_labels holds 1 NaN.*index 3"):
        mean_average_precision(codes[:10], codes, labels[:10], labels)
    with pytest.raises(ValueError, match=r"db_labels holds 2 NaN"):
        mean_average_precision(codes[:2], codes, labels[:2], labels)
    with pytest.raises(ValueError, match="NaN"):
        euclidean_precision_at_n(codes[:2].astype(float), codes.astype(float), labels[:2],
                                 labels, [5])


# --------------------------------------------------------------------------- results


def toy_result(method: str = "cnnbh", bits: int = 8, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 40)
    codes = rng.choice([-1, 1], size=(40, bits)).astype(np.int8)
    q, db = np.arange(10), np.arange(10, 40)
    return save_results(method, bits, "toy", codes[q], codes[db], (q, db), labels)


def test_a_save_killed_midway_leaves_no_result_that_counts(tmp_path, monkeypatch):
    rec = toy_result()
    json_path, codes_file = Path(rec["json_path"]), Path(rec["codes_path"])
    assert json_path == result_path("toy", "cnnbh", 8) and result_is_complete(json_path)
    before = codes_file.read_bytes()

    def killed(file, **arrays):
        file.write(b"PK\x03\x04half an npz")
        raise KeyboardInterrupt  # as a kill mid-write

    monkeypatch.setattr(np, "savez_compressed", killed)
    with pytest.raises(KeyboardInterrupt):
        toy_result(seed=1)
    assert codes_file.read_bytes() == before  # the old codes, whole
    assert not json_path.exists()  # no JSON claims them for the new run
    assert not result_is_complete(json_path)
    leftovers = [p.name for p in json_path.parent.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_a_result_counts_only_with_both_files_readable(tmp_path):
    json_path = Path(toy_result()["json_path"])
    codes_file = json_path.parent / "codes" / f"{json_path.stem}.npz"
    assert result_is_complete(json_path)
    raw = codes_file.read_bytes()
    codes_file.write_bytes(raw[: len(raw) // 2])  # as a non-atomic writer killed mid-way
    assert not result_is_complete(json_path)
    with pytest.raises(ResultsFileError, match=f"{codes_file}.*Delete"):
        load_codes(codes_file)
    codes_file.unlink()
    assert not result_is_complete(json_path)
    assert not result_is_complete(json_path.with_name("absent-8.json"))


def test_a_corrupt_results_json_is_named_and_skipped_where_allowed(tmp_path):
    toy_result("cnnbh")
    toy_result("cnnbh_p0.5")
    bad = result_path("toy", "cnnbh_p0.5", 8)
    bad.write_text('{"method": "cnnbh_p0.5", "bits": ')
    with pytest.raises(ResultsFileError, match=f"{bad}.*Delete"):
        load_results("toy")
    with pytest.warns(UserWarning, match=f"skipped: .*{bad}"):
        records = load_results("toy", headline=("cnnbh",))
    assert [r["method"] for r in records] == ["cnnbh"]
    result_path("toy", "cnnbh", 8).write_text("[]")  # a headline method's file
    with pytest.raises(ResultsFileError, match="cnnbh-8.json.*not a JSON object"):
        load_results("toy", headline=("cnnbh",))


def test_report_names_a_corrupt_results_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHLIB_EDU_ROOT", str(tmp_path / "clone"))
    folder = tmp_path / "clone" / "results" / "cifar10-1k"
    folder.mkdir(parents=True)
    (folder / "cnnbh_p0.5-12.json").write_text("{not json")  # an ablation: skipped
    with pytest.warns(UserWarning, match="cnnbh_p0.5-12.json"):
        assert report.main(["--print"]) == 0
    assert "No results for cifar10-1k" in capsys.readouterr().out
    (folder / "dpah-12.json").write_text("")  # a headline: the report stops, naming it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert report.main(["--print"]) == 1
    err = capsys.readouterr().err
    assert str(folder / "dpah-12.json") in err and "Delete" in err


# --------------------------------------------------------------------------- atomic writes


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_text(target, "old\n")

    def half(f):
        f.write(b"ne")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_save(target, half)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
    atomic_savez_compressed(tmp_path / "a.npz", x=np.arange(3))
    with np.load(tmp_path / "a.npz") as z:
        assert z["x"].tolist() == [0, 1, 2]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- course


def test_course_run_without_notebooks_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHLIB_EDU_ROOT", str(tmp_path))
    (tmp_path / "notebooks").mkdir()
    assert course.main(["run", "--profile", "quick"]) == 2
    assert "no notebooks to run" in capsys.readouterr().err


class _FakeClient:
    """nbclient's NotebookClient without a kernel: every code cell prints its profile."""

    def __init__(self, nb, **kwargs):
        self.nb, self.path = nb, kwargs["resources"]["metadata"]["path"]

    def execute(self):
        for cell in self.nb.cells:
            cell.outputs = [new_output("stream", name="stdout",
                                       text=os.environ["HASHLIB_EDU_PROFILE"] + "\n")]


def test_course_run_under_smoke_leaves_the_notebooks_as_they_are(tmp_path, monkeypatch, capsys):
    import tempfile

    import nbclient

    monkeypatch.setattr(nbclient, "NotebookClient", _FakeClient)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = tmp_path / "nb" / "01_x.ipynb"
    path.parent.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("print(1)")]), path)
    committed = path.read_bytes()
    assert course.main(["run", "--profile", "smoke", str(path)]) == 0
    assert path.read_bytes() == committed
    copies = list((tmp_path / "tmp").glob("hashlib_edu-course-*/01_x.ipynb"))
    assert len(copies) == 1 and str(copies[0]) in capsys.readouterr().out
    assert nbformat.read(copies[0], as_version=4).cells[0].outputs[0]["text"] == "smoke\n"
    assert course.main(["run", "--profile", "smoke", "--in-place", str(path)]) == 0
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "smoke\n"
    assert course.main(["run", "--profile", "quick", str(path)]) == 0
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "quick\n"
