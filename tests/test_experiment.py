"""Experiment: defaults from the method modules, a digest of exactly the weight-changing
fields, readable names; run(): the one train-and-save path, deterministic; stale results
detected."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hashlib_edu import Experiment, run
from hashlib_edu.data import load_protocol
from hashlib_edu.experiment import (
    METHODS,
    checkpoint_name,
    headline_experiment,
    stale_results,
)
from hashlib_edu.methods.dpah import DPAH_EPOCHS, DPAH_SETTINGS, DPAHSettings
from hashlib_edu.methods.dsh import DSHSettings
from hashlib_edu.profiles import checkpoints_dir


def test_defaults_come_from_the_method_modules():
    e = Experiment("dpah", 12, profile="quick")
    assert e.epochs == DPAH_EPOCHS["cifar10-1k"]["quick"]
    assert e.settings == DPAHSettings() and e.settings.alpha == DPAH_SETTINGS["alpha"]
    assert e.recipe.epochs == e.epochs and e.backbone == "small" and e.regime == "scratch"
    assert Experiment("dsh", 12, "cifar10-dsh", profile="quick").backbone == "dshnet"
    assert Experiment("dsh", 12, "cifar10-1k", profile="quick").backbone == "small"
    assert Experiment("dpah", 12, regime="frozen", profile="quick").backbone == "efficientnet_lite0"


def test_round_trip_and_digest_cover_exactly_the_weight_fields():
    e = Experiment("orthohash", 32, seed=2, profile="quick")
    again = Experiment.from_dict(json.loads(json.dumps(e.to_dict())))
    assert again == e and again.digest() == e.digest()
    # a label is cosmetic: same digest, same checkpoint
    labelled = e.replace(label="orthohash_my_run")
    assert labelled.digest() == e.digest() and checkpoint_name(labelled) == checkpoint_name(e)
    # every weight-changing field changes the digest
    changed = [e.replace(bits=24), e.replace(seed=3), e.replace(epochs=10),
               e.replace(settings={"margin": 0.2}), e.replace(protocol="cifar10-1k-val"),
               e.replace(profile="paper"),
               e.replace(recipe=dataclasses.replace(e.recipe, lr=0.05))]
    digests = {c.digest() for c in changed} | {e.digest()}
    assert len(digests) == len(changed) + 1


def test_names_are_readable():
    e = Experiment("dpah", 12, profile="quick")
    assert checkpoint_name(e) == f"cifar10-1k/quick-scratch-small/dpah-12-{e.digest()}"
    assert e.result_name() == "dpah"
    assert Experiment("dpah", 12, seed=1, epochs=100, profile="quick").result_name() == \
        "dpah_ep100_seed1"
    assert "-seed1-ep100-" in checkpoint_name(Experiment("dpah", 12, seed=1, epochs=100,
                                                         profile="quick"))


def test_bad_experiments_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match="unknown method 'dpha'"):
        Experiment("dpha", 12)
    with pytest.raises(ValueError, match="bits"):
        Experiment("dpah", 0)
    with pytest.raises(ValueError, match="unknown protocol"):
        Experiment("dpah", 12, "cifar100")
    with pytest.raises(ValueError, match="has no field"):
        Experiment("dpah", 12, settings={"margin": 0.1})
    with pytest.raises(TypeError, match="DSHSettings"):
        Experiment("dpah", 12, settings=DSHSettings())
    with pytest.raises(ValueError, match="fitted, not trained"):
        Experiment("lsh", 12, epochs=3)
    with pytest.raises(ValueError, match="pretrained backbone"):
        Experiment("dpah", 12, regime="frozen", backbone="small")
    assert set(METHODS) >= {"lsh", "itq", "ksh", "cnnbh", "dsh", "dpah", "orthohash"}


def _smoke_run(smoke_data, tmp_path, monkeypatch, folder: str, **kwargs):
    monkeypatch.setenv("HASHLIB_EDU_OUTPUT", str(tmp_path / folder))
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    return run(Experiment("dpah", 12, profile="smoke", **kwargs), data=data, progress=False)


def test_the_same_experiment_twice_gives_the_same_numbers(smoke_data, tmp_path, monkeypatch):
    a = _smoke_run(smoke_data, tmp_path, monkeypatch, "first")
    b = _smoke_run(smoke_data, tmp_path, monkeypatch, "second")
    assert a.record["json_path"] != b.record["json_path"]  # fresh output roots
    for key in ("map", "map_tie_aware", "p_at_h2"):
        assert a.record[key] == b.record[key]
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert np.array_equal(x.numpy(), y.numpy())


def test_run_saves_its_experiment_and_reloads_its_checkpoint(smoke_data, tmp_path, monkeypatch):
    first = _smoke_run(smoke_data, tmp_path, monkeypatch, "out")
    record = json.loads(open(first.record["json_path"]).read())
    assert record["experiment"] == first.experiment.to_dict()
    assert record["experiment_digest"] == first.experiment.digest()
    ckpt = checkpoints_dir("smoke") / f"{checkpoint_name(first.experiment)}.pt"
    assert ckpt.is_file()
    again = _smoke_run(smoke_data, tmp_path, monkeypatch, "out")
    assert again.history.train_seconds == first.history.train_seconds  # loaded, not retrained
    assert again.record["map_tie_aware"] == first.record["map_tie_aware"]
    assert first.loss is not None and first.loss.n_classes == 4


def test_train_false_never_trains(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HASHLIB_EDU_OUTPUT", str(tmp_path / "empty"))
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    with pytest.raises(FileNotFoundError, match="train=True"):
        run(Experiment("dpah", 12, profile="smoke"), train=False, data=data, progress=False)


def test_data_must_match_the_experiment(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    with pytest.raises(ValueError, match="cifar10-dsh"):
        run(Experiment("dpah", 12, "cifar10-dsh", profile="smoke"), data=data)


def test_fitted_methods_hash_the_classifiers_features(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HASHLIB_EDU_OUTPUT", str(tmp_path / "out"))
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    e = Experiment("itq", 8, profile="smoke")
    result = run(e, data=data, progress=False)
    source = e.feature_experiment()
    assert e.settings.source == source.digest()
    assert result.record["feature_experiment_digest"] == source.digest()
    # a retrained classifier (another recipe) makes another ITQ experiment
    assert Experiment("itq", 8, profile="smoke").digest() == e.digest()


def test_stale_results_are_listed(smoke_data, tmp_path, monkeypatch):
    result = _smoke_run(smoke_data, tmp_path, monkeypatch, "out")
    root = tmp_path / "out" / "results"
    assert stale_results(root) == []
    assert headline_experiment(result.record).digest() == result.experiment.digest()
    path = result.record["json_path"]
    record = json.loads(open(path).read())
    # a result trained with a setting that is no longer the method's default is stale
    record["experiment"]["settings"]["alpha"] = 0.5
    record["experiment_digest"] = Experiment.from_dict(record["experiment"]).digest()
    open(path, "w").write(json.dumps(record))
    (problem,) = stale_results(root)
    assert problem[0].name == "dpah-12.json" and "settings.alpha 0.5 -> 0.0" in problem[1]
    # a hand-edited number no longer matches the codes
    record = json.loads(json.dumps(result.record))
    record["map_tie_aware"] += 0.1
    open(path, "w").write(json.dumps(record))
    (problem,) = stale_results(root)
    assert "map_tie_aware stored" in problem[1]
    # a file without its experiment
    del record["experiment"]
    open(path, "w").write(json.dumps(record))
    assert "no experiment" in stale_results(root)[0][1]


def test_report_check_exits_1_on_a_stale_result(smoke_data, tmp_path, monkeypatch, capsys):
    from hashlib_edu.report import main

    result = _smoke_run(smoke_data, tmp_path, monkeypatch, "out")
    monkeypatch.setenv("HASHLIB_EDU_ROOT", str(tmp_path / "out"))  # its results/ is checked
    assert main(["--check"]) == 0
    assert "every result is current" in capsys.readouterr().out
    path = result.record["json_path"]
    record = json.loads(open(path).read())
    record["experiment"]["epochs"] = 7  # trained with another budget than today's
    record["experiment_digest"] = Experiment.from_dict(record["experiment"]).digest()
    open(path, "w").write(json.dumps(record))
    assert main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "dpah-12.json: stale" in out and "1 stale or wrong results" in out


def test_codes_too_short_for_the_classes_warn(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HASHLIB_EDU_OUTPUT", str(tmp_path / "out"))
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)  # 4 classes
    with pytest.warns(UserWarning, match="1-bit codes have only 2 values for 4 classes"):
        run(Experiment("lsh", 1, profile="smoke"), data=data, progress=False)
