"""hashlib_edu.release: packing the final weights of finished checkpoints, and train_model
downloading a published model (checksum-verified) instead of training it.

Every model here is a tiny network trained for an epoch or two on synthetic images, and the
"published" location is a folder (a ``file://`` URL, or a local http server) under tmp_path.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

import hashlib_edu
from hashlib_edu import release
from hashlib_edu.backbones import BackboneWithCodeLayer
from hashlib_edu.data import load_protocol
from hashlib_edu.methods.dsh import DSHLoss
from hashlib_edu.profiles import checkpoints_dir
from hashlib_edu.recipes import code_layer_recipe
from hashlib_edu.release import MODELS_URL_ENV, TRAIN_ENV, ChecksumError, codes_check, pack
from hashlib_edu.training import BatchLoader, fit, prepare, seed_everything, train_model

NAME = "tiny-dsh-8"


@pytest.fixture()
def data(smoke_data):
    return load_protocol("cifar10-1k", "smoke", dataset=smoke_data)


@pytest.fixture(autouse=True)
def _no_models_url(monkeypatch):
    """No location unless a test sets one; fresh per-process manifest and notice caches."""
    monkeypatch.delenv(MODELS_URL_ENV, raising=False)
    monkeypatch.delenv(TRAIN_ENV, raising=False)
    monkeypatch.setattr(release, "_MANIFESTS", {})
    monkeypatch.setattr(release, "_NOTICED", set())


def tiny_model(bits: int = 8) -> BackboneWithCodeLayer:
    seed_everything(0)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4, padding=1), nn.BatchNorm2d(4),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return BackboneWithCodeLayer(bits, backbone=backbone, feature_dim=16)


def train(data, name: str = NAME, epochs: int = 2, **kwargs):
    model = tiny_model()
    history = train_model(model, DSHLoss(8), data, code_layer_recipe(epochs), name=name,
                          device="cpu", progress=False, **kwargs)
    return model, history


def outputs(model: nn.Module, data) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(prepare(torch.as_tensor(data.images("query")[:32])))


def no_training(monkeypatch) -> None:
    """From now on any training step fails the test."""
    def forward(self, outputs, labels):
        raise AssertionError("trained although a finished model was available")

    monkeypatch.setattr(DSHLoss, "forward", forward)


def checkpoint() -> Path:
    return checkpoints_dir("smoke") / f"{NAME}.pt"


def publish(tmp_path: Path, monkeypatch, **kwargs) -> tuple[Path, list[dict]]:
    """Pack the checkpoints into tmp_path/bundle, point HASHLIB_EDU_MODELS_URL at it."""
    bundle = tmp_path / "bundle"
    entries = pack(out=bundle, **kwargs)
    monkeypatch.setenv(MODELS_URL_ENV, bundle.as_uri())
    return bundle, entries


# --------------------------------------------------------------------------- pack + download


def test_a_packed_model_is_downloaded_verified_and_loaded_not_trained(data, tmp_path,
                                                                       monkeypatch, capsys):
    model, history = train(data)
    bundle, entries = publish(tmp_path, monkeypatch)
    assert [(e["name"], e["dtype"], e["epochs"]) for e in entries] == [(NAME, "float32", 2)]
    assert entries[0]["train_seconds"] == history.train_seconds
    state = torch.load(bundle / f"{NAME}.pt", weights_only=True)
    assert {"optimizer", "scheduler", "torch_rng", "cuda_rng"}.isdisjoint(state)
    assert set(state) >= {"model", "loss_fn", "history", "epoch", "epochs", "dtype"}

    checkpoint().unlink()
    no_training(monkeypatch)
    again, history2 = train(data)
    assert "Downloaded the trained model" in capsys.readouterr().out
    assert history2.train_seconds == history.train_seconds
    assert history2.loss == history.loss
    assert torch.equal(outputs(again, data), outputs(model, data))
    # the download is now the local checkpoint: found without the location
    monkeypatch.setenv(MODELS_URL_ENV, str(tmp_path / "nowhere"))
    _, history3 = train(data)
    assert history3.train_seconds == history.train_seconds


def test_manifest_sha256_and_sizes_are_right(data, tmp_path, monkeypatch):
    train(data)
    train(data, name="tiny-dsh-8-other", epochs=1)
    bundle, entries = publish(tmp_path, monkeypatch)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["models"] == entries and len(entries) == 2
    assert manifest["version"] and "float32" in manifest["dtype_note"]
    for entry in entries:
        raw = (bundle / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
        assert entry["size"] == len(raw)
        assert set(entry) == {"name", "file", "sha256", "size", "dtype", "epochs",
                              "train_seconds"}
    # packing one model again keeps the other's entry
    assert [e["name"] for e in pack(out=bundle, only="*-other")] == [e["name"] for e in entries]


def test_a_corrupted_download_raises_and_leaves_no_file(data, tmp_path, monkeypatch):
    train(data)
    bundle, entries = publish(tmp_path, monkeypatch)
    path = bundle / f"{NAME}.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    checkpoint().unlink()
    no_training(monkeypatch)
    with pytest.raises(ChecksumError) as err:
        train(data)
    message = str(err.value)
    for needed in (f"{NAME}.pt", entries[0]["sha256"], hashlib.sha256(raw).hexdigest(),
                   "TRAIN = True", TRAIN_ENV, MODELS_URL_ENV, "delete"):
        assert needed in message, needed
    assert isinstance(err.value, RuntimeError)
    assert list(checkpoints_dir("smoke").iterdir()) == []


def test_a_name_missing_from_the_manifest_trains(data, tmp_path, monkeypatch):
    train(data)
    publish(tmp_path, monkeypatch)
    _, history = train(data, name="not-published", epochs=1)
    assert history.epochs == 1
    state = torch.load(checkpoints_dir("smoke") / "not-published.pt", weights_only=False)
    assert "optimizer" in state and state["epochs"] == 1


@pytest.mark.parametrize("how", ["env", "download=False", "use_training"])
def test_training_can_be_forced_even_when_the_model_is_published(data, tmp_path, monkeypatch,
                                                                 capsys, how):
    train(data, epochs=1)
    publish(tmp_path, monkeypatch)
    checkpoint().unlink()
    if how == "env":
        monkeypatch.setenv(TRAIN_ENV, "1")
        train(data, epochs=1)
    elif how == "use_training":  # a notebook's TRAIN = True
        monkeypatch.setenv(TRAIN_ENV, "")  # restored after the test
        assert hashlib_edu.use_training(True) is True
        train(data, epochs=1)
    else:
        train(data, epochs=1, download=False)
    assert "Downloaded" not in capsys.readouterr().out
    assert "optimizer" in torch.load(checkpoint(), weights_only=False)  # trained here


def test_use_training_false_leaves_downloads_on_and_rejects_non_booleans(monkeypatch):
    monkeypatch.setenv(TRAIN_ENV, "")
    assert release.use_training(False) is False and release.models_url("quick") is not None
    with pytest.raises(TypeError, match="TRAIN must be True or False"):
        release.use_training("yes")


def test_fit_refuses_a_bundle_of_another_length(data, tmp_path, monkeypatch):
    train(data, epochs=1)
    bundle, _ = publish(tmp_path, monkeypatch)
    checkpoint().write_bytes((bundle / f"{NAME}.pt").read_bytes())
    with pytest.raises(RuntimeError, match="no optimizer state"):
        train(data, epochs=3)


# --------------------------------------------------------------------------- pack's rules


def test_pack_skips_unfinished_and_undecidable_checkpoints(synthetic, tmp_path, capsys):
    src = tmp_path / "ckpts"

    def run(name: str, epochs: int, stop_after: int | None = None, schedule: bool = True):
        seed_everything(0)
        model = nn.Sequential(nn.Conv2d(3, 2, 3, stride=8), nn.Flatten(), nn.Linear(32, 4))
        loader = BatchLoader(synthetic.images, synthetic.labels, batch_size=64, seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        sched = (torch.optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=epochs * 2)
                 if schedule else None)

        def stop(epoch, _model):
            if stop_after is not None and epoch == stop_after:
                raise KeyboardInterrupt

        try:
            fit(model, nn.CrossEntropyLoss(), loader, epochs, opt, sched, checkpoint=src /
                f"{name}.pt", progress=False, on_epoch_end=stop)
        except KeyboardInterrupt:
            pass

    def drop_epochs(name: str) -> None:  # as saved before checkpoints stored "epochs"
        path = src / f"{name}.pt"
        state = torch.load(path, weights_only=False)
        del state["epochs"]
        torch.save(state, path)

    run("done", 2)
    run("half", 2, stop_after=1)
    run("old-done", 2)
    run("old-half", 2, stop_after=1)
    run("old-constant", 1, schedule=False)
    for name in ("old-done", "old-half", "old-constant"):
        drop_epochs(name)
    (src / "junk.pt").write_bytes(b"not a checkpoint")
    entries = pack(src, tmp_path / "out")
    assert [e["name"] for e in entries] == ["done", "old-done"]
    printed = capsys.readouterr().out
    assert "skipped half: unfinished (epoch 1 of 2)" in printed
    assert "skipped old-half: unfinished (epoch 1)" in printed
    assert "skipped old-constant" in printed and "cannot tell" in printed
    assert "skipped junk" in printed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "done.pt", "manifest.json", "old-done.pt"]


def test_half_precision_only_when_a_check_shows_identical_codes(data, tmp_path, monkeypatch):
    model, _ = train(data, epochs=1)
    probe = prepare(torch.as_tensor(data.images("query")[:64]))
    check = codes_check(lambda name: tiny_model() if name == NAME else None, probe)
    bundle, entries = publish(tmp_path, monkeypatch, check=check)
    reference = outputs(model, data) >= 0
    if entries[0]["dtype"] == "float16":  # then the codes are the float32 model's
        state = torch.load(bundle / f"{NAME}.pt", weights_only=True)
        assert state["model"]["hash.weight"].dtype == torch.float16
        checkpoint().unlink()
        again, _ = train(data, epochs=1)
        assert torch.equal(outputs(again, data) >= 0, reference)
    assert pack(out=bundle, check=lambda *args: False)[0]["dtype"] == "float32"
    assert pack(out=bundle, check=codes_check(lambda name: None, probe))[0]["dtype"] == "float32"


def test_a_float16_bundle_loads_into_the_float32_model(data, tmp_path, monkeypatch):
    model, _ = train(data, epochs=1)
    bundle, entries = publish(tmp_path, monkeypatch, check=lambda *args: True)
    assert entries[0]["dtype"] == "float16"
    state = torch.load(bundle / f"{NAME}.pt", weights_only=True)
    assert state["model"]["hash.weight"].dtype == torch.float16
    assert state["model"]["backbone.1.num_batches_tracked"].dtype == torch.int64
    checkpoint().unlink()
    no_training(monkeypatch)
    again, _ = train(data, epochs=1)
    assert again.hash.weight.dtype == torch.float32
    assert torch.allclose(outputs(again, data), outputs(model, data), atol=1e-2, rtol=1e-2)


def test_is_finished_rules():
    assert release.is_finished({"epoch": 3, "epochs": 3}) is True
    assert release.is_finished({"epoch": 2, "epochs": 3}) is False
    assert release.is_finished({"epoch": 3, "scheduler": {"total_steps": 30,
                                                          "last_epoch": 30}}) is True
    assert release.is_finished({"epoch": 2, "scheduler": {"T_max": 30, "last_epoch": 20}}) is False
    assert release.is_finished({"epoch": 3, "scheduler": None}) is None


def test_cli_pack(data, tmp_path, capsys):
    train(data, epochs=1)
    args = ["pack", "--checkpoints", str(checkpoints_dir("smoke")), "--out", str(tmp_path / "r")]
    assert release.main([*args, "--only", "tiny-*"]) == 0
    assert (tmp_path / "r" / f"{NAME}.pt").is_file()
    assert release.main([*args[:3], "--out", str(tmp_path / "empty"), "--only", "x*"]) == 1
    assert "Nothing packed" in capsys.readouterr().out


# --------------------------------------------------------------------------- where to look


def test_models_url_per_profile_and_environment(monkeypatch):
    assert release.models_url("smoke") is None  # CI is offline
    assert release.models_url("quick") == release.default_models_url()
    assert release.default_models_url() == (
        f"{hashlib_edu.REPO_URL}/releases/download/models-v{hashlib_edu.__version__}")
    monkeypatch.setenv(MODELS_URL_ENV, "file:///somewhere")
    assert release.models_url("smoke") == "file:///somewhere"
    monkeypatch.setenv(MODELS_URL_ENV, "")
    assert release.models_url("quick") is None
    monkeypatch.setenv(MODELS_URL_ENV, "file:///somewhere")
    monkeypatch.setenv(TRAIN_ENV, "1")
    assert release.models_url("quick") is None


def test_offline_is_one_notice_and_no_download(monkeypatch, tmp_path, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(release.urllib.request, "urlopen", offline)
    monkeypatch.setenv(MODELS_URL_ENV, "https://example.invalid/models")
    assert not release.fetch("a", tmp_path / "a.pt", profile="quick")
    assert not release.fetch("b", tmp_path / "b.pt", profile="quick")
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "no network" in printed[0]
    assert list(tmp_path.iterdir()) == []


def test_download_over_http(data, tmp_path, monkeypatch):
    model, _ = train(data, epochs=1)
    bundle, _ = publish(tmp_path, monkeypatch)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bundle))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(MODELS_URL_ENV, f"http://127.0.0.1:{server.server_port}/")
        checkpoint().unlink()
        no_training(monkeypatch)
        again, _ = train(data, epochs=1)
    finally:
        server.shutdown()
        server.server_close()
    assert torch.equal(outputs(again, data), outputs(model, data))
