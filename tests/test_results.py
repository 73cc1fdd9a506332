"""The results writer: schema, codes round trip, validation, and committed results re-checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashlib_edu.metrics import mean_average_precision, precision_within_radius
from hashlib_edu.results import RESULT_KEYS, evaluate_codes, load_codes, load_results, save_results

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
