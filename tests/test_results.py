"""The results writer: schema, codes round trip, validation, and committed results re-checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashlib_edu.metrics import (
    mean_average_precision,
    precision_at_n,
    precision_within_radius,
)
from hashlib_edu.results import (
    METRIC_KEYS,
    RESULT_KEYS,
    evaluate_codes,
    load_codes,
    load_results,
    refresh,
    save_results,
)

ROOT = Path(__file__).resolve().parents[1]


def _toy(seed: int = 0, n: int = 300, k: int = 16):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    protos = rng.choice([-1, 1], size=(4, k))
    flip = rng.random((n, k)) < 0.2
    codes = np.where(flip, -protos[labels], protos[labels]).astype(np.int8)
    q = np.arange(0, 50)
    db = np.arange(50, n)
    return codes, labels, q, db


def test_save_results_writes_schema_and_codes(tmp_path):
    codes, labels, q, db = _toy()
    rec = save_results("toy", 16, "toy-protocol", codes[q], codes[db], (q, db[:10], db), labels,
                       train_seconds=1.5, encode_seconds=0.1, epochs=3, device="cpu", seed=0,
                       paper_map=0.5, note="hello")
    data = json.loads(Path(rec["json_path"]).read_text())
    assert tuple(data)[: len(RESULT_KEYS)] == RESULT_KEYS  # every contract key, in order
    assert data["method"] == "toy" and data["bits"] == 16 and data["protocol"] == "toy-protocol"
    assert data["profile"] == "smoke" and data["paper_map"] == 0.5 and data["note"] == "hello"
    assert data["map"] == pytest.approx(mean_average_precision(codes[q], codes[db], labels[q], labels[db]))
    p, empty = precision_within_radius(codes[q], codes[db], labels[q], labels[db], radius=2,
                                       return_empty_fraction=True)
    assert data["p_at_h2"] == pytest.approx(p) and data["p_at_h2_empty_fraction"] == pytest.approx(empty)
    # the codes file holds everything needed to re-check the numbers
    z = np.load(rec["codes_path"])
    assert set(z.files) == {"query_codes", "db_codes", "n_bits", "query_idx", "db_idx",
                            "query_labels", "db_labels"}
    assert z["query_codes"].dtype == np.uint8 and z["query_codes"].shape == (50, 2)
    np.testing.assert_array_equal(np.unpackbits(z["db_codes"], axis=1)[:, :16], (codes[db] > 0))
    back = load_codes(rec["codes_path"])
    np.testing.assert_array_equal(back["query_codes"], codes[q])
    np.testing.assert_array_equal(back["db_idx"], db)
    assert str(tmp_path) in rec["json_path"]  # smoke: never inside the repository
    assert load_results("toy-protocol")[0]["method"] == "toy"


def test_paper_map_is_null_by_default():
    codes, labels, q, db = _toy(1)
    rec = save_results("toy", 16, "p", codes[q], codes[db], (q, db), labels)
    assert json.loads(Path(rec["json_path"]).read_text())["paper_map"] is None


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 12}, "bits"),
    ({"method": "bad name"}, "method"),
    ({"split": (np.arange(10),)}, "split"),
    ({"query_codes": np.zeros((50, 16)) + 0.5}, "binary"),
])
def test_save_results_validation(kwargs, match):
    codes, labels, q, db = _toy(2)
    args = {"method": "toy", "bits": 16, "protocol": "p", "query_codes": codes[q],
            "db_codes": codes[db], "split": (q, db), "labels": labels}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        save_results(**args)


def test_codes_and_indices_must_match():
    codes, labels, q, db = _toy(3)
    with pytest.raises(ValueError, match="match one to one"):
        save_results("toy", 16, "p", codes[q][:-1], codes[db], (q, db), labels)


COMMITTED = sorted((ROOT / "results").glob("*/codes/*.npz"))


@pytest.mark.skipif(not COMMITTED, reason="no committed results yet")
def test_committed_results_recompute_from_codes():
    """Re-compute the numbers of committed codes files and compare with their JSON."""
    picks = [p for p in COMMITTED
             if p.stem in ("cnnbh-48", "orthohash-48", "lsh_pixels-48", "dsh-48")]  # dsh: reproduce
    picks = picks or COMMITTED[:1]
    for path in picks:
        record = json.loads((path.parent.parent / f"{path.stem}.json").read_text())
        z = load_codes(path)
        got = evaluate_codes(z["query_codes"], z["db_codes"], z["query_labels"], z["db_labels"])
        for key, value in got.items():
            assert record[key] == pytest.approx(value, abs=1e-9), (path.name, key)
        assert record["bits"] == int(z["n_bits"])


def separate_evaluation(q, d, ql, dl) -> dict[str, float]:
    """evaluate_codes as it was: one metric function (one scan of the distances) per number."""
    args, nd = (q, d, ql, dl), len(d)
    p_h2, empty = precision_within_radius(*args, radius=2, return_empty_fraction=True)
    out = {"map": mean_average_precision(*args),
           "map_tie_aware": mean_average_precision(*args, ties="expected"),
           "p_at_h2": p_h2, "p_at_h2_empty_fraction": empty}
    for ties, suffix in (("stable", ""), ("expected", "_tie_aware")):
        out[f"map_at_1000{suffix}"] = mean_average_precision(*args, top_k=min(1000, nd),
                                                             ties=ties)
        for n in (500, 1500):
            out[f"p_at_{n}{suffix}"] = precision_at_n(*args, n=min(n, nd), ties=ties)
    return out


def _tied_codes(k: int, nq: int, nd: int, multi: bool = False, seed: int = 0):
    rng = np.random.default_rng([k, nd, seed])
    q, d = rng.choice([-1, 1], (nq, k)), rng.choice([-1, 1], (nd, k))
    if multi:
        return (q, d, (rng.random((nq, 4)) < 0.3).astype(int),
                (rng.random((nd, 4)) < 0.3).astype(int))
    return q, d, rng.integers(0, 5, nq), np.sort(rng.integers(0, 5, nd))  # database by class


@pytest.mark.parametrize(("k", "nd", "multi"), [(2, 2500, False), (4, 1700, False),
                                                (3, 800, False), (6, 2000, True)])
def test_evaluate_codes_equals_the_separate_metric_functions(k, nd, multi):
    """Few bits: huge ties at every cut (1000, 500, 1500); nd < 1500 and < 1000 too."""
    q, d, ql, dl = _tied_codes(k, 40, nd, multi)
    got = evaluate_codes(q, d, ql, dl)
    assert tuple(got) == METRIC_KEYS and all(isinstance(v, float) for v in got.values())
    want = separate_evaluation(q, d, ql, dl)
    for key in METRIC_KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    # ties at the cuts: the stable and tie-aware twins differ (each pair is checked above)
    assert min(abs(got[k] - got[f"{k}_tie_aware"]) for k in ("p_at_500", "map_at_1000")) > 1e-6


@pytest.mark.skipif(not (ROOT / "results/cifar10-1k/codes/cnnbh-48.npz").is_file(),
                    reason="no committed cnnbh-48 codes")
def test_evaluate_codes_equals_the_separate_functions_on_committed_codes():
    z = load_codes(ROOT / "results/cifar10-1k/codes/cnnbh-48.npz")
    args = (z["query_codes"], z["db_codes"], z["query_labels"], z["db_labels"])
    got, want = evaluate_codes(*args), separate_evaluation(*args)
    for key in METRIC_KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key


def test_refresh_adds_missing_keys_in_place_and_reports_disagreements(tmp_path):
    codes, labels, q, db = _toy(4)
    rec = save_results("toy", 16, "p", codes[q], codes[db], (q, db), labels, note="kept")
    path = Path(rec["json_path"])
    full = json.loads(path.read_text())
    new_keys = ("map_at_1000_tie_aware", "p_at_500_tie_aware", "p_at_1500_tie_aware")
    old = {k: v for k, v in full.items() if k not in new_keys}  # as written before them
    path.write_text(json.dumps(old, indent=2) + "\n")
    root = path.parent.parent
    assert refresh(root) == []
    assert path.read_text() == json.dumps(full, indent=2) + "\n"  # same order, same values
    assert refresh(root) == [] and path.read_text() == json.dumps(full, indent=2) + "\n"
    # a stored value that does not match its codes is reported and left as it is
    path.write_text(json.dumps({**old, "map": old["map"] + 1e-6}, indent=2) + "\n")
    problems = refresh(root)
    assert len(problems) == 1 and "map stored" in problems[0] and path.name in problems[0]
    refreshed = json.loads(path.read_text())
    assert refreshed["map"] == old["map"] + 1e-6 and list(refreshed) == list(full)
    (root / "p" / "orphan-8.json").write_text("{}")
    assert any("orphan-8.json: no codes file" in line for line in refresh(root))


def test_refresh_places_keys_after_their_twins_whatever_else_is_missing(tmp_path):
    codes, labels, q, db = _toy(5)
    path = Path(save_results("toy", 16, "p", codes[q], codes[db], (q, db), labels)["json_path"])
    full = json.loads(path.read_text())
    keep = ("method", "bits", "map", "p_at_h2", "p_at_500", "extra")
    path.write_text(json.dumps({k: full.get(k, "x") for k in keep}, indent=2))
    assert refresh(path.parent.parent) == []
    assert list(json.loads(path.read_text())) == [
        "method", "bits", "map", "map_tie_aware", "map_at_1000", "map_at_1000_tie_aware",
        "p_at_h2", "p_at_h2_empty_fraction", "p_at_500", "p_at_500_tie_aware", "p_at_1500",
        "p_at_1500_tie_aware", "extra"]


def test_refresh_labels_runs_of_dshs_network():
    codes, labels, q, db = _toy(6)
    dsh = Path(save_results("dshnet_x", 16, "p", codes[q], codes[db], (q, db), labels,
                            network="DSHNet + BN")["json_path"])
    small = Path(save_results("cnnbh", 16, "p", codes[q], codes[db], (q, db), labels)["json_path"])
    assert json.loads(dsh.read_text())["backbone"] == "small"  # as an older writer left it
    before = small.read_text()
    assert refresh(dsh.parent.parent) == []
    assert json.loads(dsh.read_text())["backbone"] == "dshnet"
    assert small.read_text() == before
