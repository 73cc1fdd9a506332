"""`python -m hashlib_edu.reproduce`: every method on one protocol, results written through
the results writer, re-checkable from the codes, and resumable (a second run reloads)."""

from __future__ import annotations

import json

import pytest

from hashlib_edu.data import load_protocol
from hashlib_edu.methods.orthohash import OrthoHashLoss, orthohash_recipe
from hashlib_edu.profiles import results_dir
from hashlib_edu.reproduce import (
    METHODS,
    PAPER_MAP,
    main,
    reproduce,
    result_name,
    run_method,
    train_and_save,
)
from hashlib_edu.results import RESULT_KEYS, evaluate_codes, load_codes


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
    first = run_method("dsh", 8, data, device="cpu", progress=False)
    second = run_method("dsh", 8, data, device="cpu", progress=False)
    assert second["train_seconds"] == first["train_seconds"]  # loaded, not retrained
    assert second["map"] == first["map"]
    # notebook 07 runs only what is missing
    assert reproduce(["dsh"], [8], data=data, profile="smoke", progress=False,
                     skip_existing=True) == []
    assert [r["bits"] for r in reproduce(["dsh"], [8, 4], data=data, profile="smoke",
                                         progress=False, skip_existing=True)] == [4]


def test_another_seed_never_overwrites_the_seed_0_results(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    assert result_name("dsh") == "dsh" and result_name("dsh", 2) == "dsh_seed2"
    first = run_method("dsh", 6, data, device="cpu", progress=False)
    other = run_method("dsh", 6, data, seed=2, device="cpu", progress=False)
    assert other["method"] == "dsh_seed2" and other["seed"] == 2
    folder = results_dir("smoke") / "cifar10-1k"
    assert json.loads((folder / "dsh-6.json").read_text())["map"] == first["map"]
    assert json.loads((folder / "dsh_seed2-6.json").read_text())["map"] == other["map"]
    # skip_existing looks for this seed's file
    assert reproduce(["dsh"], [6], data=data, profile="smoke", seed=2, progress=False,
                     skip_existing=True) == []


def test_another_training_budget_is_saved_under_its_own_name(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    assert result_name("orthohash", epochs=150) == "orthohash_ep150"
    assert result_name("orthohash", 1, epochs=150) == "orthohash_ep150_seed1"
    first = run_method("orthohash", 6, data, device="cpu", progress=False)
    longer = run_method("orthohash", 6, data, device="cpu", progress=False, epochs=2)
    assert first["epochs"] == 1 and longer["epochs"] == 2
    assert longer["method"] == "orthohash_ep2"
    folder = results_dir("smoke") / "cifar10-1k"
    assert json.loads((folder / "orthohash-6.json").read_text())["map"] == first["map"]
    assert json.loads((folder / "orthohash_ep2-6.json").read_text())["map"] == longer["map"]
    assert reproduce(["orthohash"], [6], data=data, profile="smoke", progress=False,
                     skip_existing=True, epochs=2) == []
    # the profile's own schedule (smoke: 1 epoch) is no other budget
    again = run_method("orthohash", 6, data, device="cpu", progress=False, epochs=1)
    assert again["method"] == "orthohash" and again["map"] == first["map"]
    assert reproduce(["orthohash"], [6], data=data, profile="smoke", progress=False,
                     skip_existing=True, epochs=1) == []
    # every trained method's recipe takes the budget
    for method in ("cnnbh", "dsh"):
        record = run_method(method, 6, data, device="cpu", progress=False, epochs=2)
        assert record["method"] == f"{method}_ep2" and record["epochs"] == 2


def test_train_and_save_records_the_loss_and_backbone(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    loss_fn = OrthoHashLoss(8, 4, margin=0.1)
    model, history, record = train_and_save(
        data, 8, loss_fn, orthohash_recipe(1), method="orthohash", name="orthohash_m0.1",
        latent_bn=True, device="cpu", progress=False, note="a test")
    saved = json.loads((results_dir("smoke") / "cifar10-1k" / "orthohash_m0.1-8.json").read_text())
    assert saved["map"] == record["map"] and history.epochs == 1
    assert saved["loss"] == repr(loss_fn) and "margin=0.1" in saved["loss"]
    assert saved["backbone"] == "small" and saved["latent_bn"] is True
    assert saved["note"] == "a test" and model.n_bits == 8


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
    with pytest.raises(ValueError, match="positive integer"):
        run_method("dsh", 8, data, epochs=0)
    with pytest.raises(ValueError, match="fitted, not trained"):
        reproduce(["lsh", "dsh"], [8], data=data, epochs=3)
    with pytest.raises(SystemExit):
        main(["--methods", "itq", "--epochs", "5"])
