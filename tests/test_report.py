"""The README results table is generated from results JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashlib_edu.report import (
    BEGIN,
    END,
    reproduce_runs,
    results_table,
    runs_table,
    update_readme,
)
from hashlib_edu.results import save_results


def _save(method: str, bits: int, paper=None, seed: int = 0):
    rng = np.random.default_rng([bits, seed])
    labels = rng.integers(0, 3, 60)
    codes = rng.choice([-1, 1], size=(60, bits)).astype(np.int8)
    q, db = np.arange(10), np.arange(10, 60)
    return save_results(method, bits, "toy", codes[q], codes[db], (q, db), labels,
                        train_seconds=120.0, paper_map=paper)


def test_table_lists_headline_methods_from_json(tmp_path):
    rec = _save("cnnbh", 12, paper=0.532)
    _save("cnnbh_p0.5", 12)  # an ablation: not in the README table
    root = tmp_path / "output" / "results"
    table = results_table("toy", root=root)
    assert f"{rec['map']:.3f}" != f"{rec['map_tie_aware']:.3f}"  # which one is shown matters
    assert f"| cnnbh | {rec['map_tie_aware']:.3f} (*0.532*) | 2.0 | smoke |" in table  # 120 s
    assert "cnnbh_p0.5" not in table
    assert table.startswith("Tie-aware mAP@all on `toy`") and "†" not in table
    rec24 = _save("dsh", 24)
    table = results_table("toy", root=root)
    assert "| method | 12 bits | 24 bits |" in table
    assert f"| dsh |  | {rec24['map_tie_aware']:.3f} | 2.0 | smoke |" in table


def _drop_tie_aware(rec: dict) -> None:
    """Make ``rec``'s JSON look like one written before ``map_tie_aware`` existed."""
    path = Path(rec["json_path"])
    data = json.loads(path.read_text())
    del data["map_tie_aware"]
    path.write_text(json.dumps(data, indent=2))


def test_tables_fall_back_to_the_stable_map_and_say_so(tmp_path):
    root = tmp_path / "output" / "results"
    old = _save("cnnbh", 12)
    _drop_tie_aware(old)
    new = _save("dsh", 12)
    table = results_table("toy", root=root)
    assert f"| cnnbh | {old['map']:.3f}† | 2.0 | smoke |" in table
    assert f"| dsh | {new['map_tie_aware']:.3f} | 2.0 | smoke |" in table
    assert "marked † are the stable mAP@all" in table.splitlines()[0]
    runs = {name: _save(name, 48, seed=i) for i, name in enumerate(("dpah", "dpah_seed1"))}
    _drop_tie_aware(runs["dpah_seed1"])
    rows = reproduce_runs("toy", 48, root=root)
    assert [(r["map"], r["tie_aware"]) for r in rows] == [
        (runs["dpah"]["map_tie_aware"], True), (runs["dpah_seed1"]["map"], False)]
    table = runs_table("toy", 48, root=root)
    assert f"{runs['dpah_seed1']['map']:.3f}† (seed 1)" in table and "marked †" in table


def test_update_readme_replaces_between_markers(tmp_path):
    _save("orthohash", 16)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    import hashlib_edu.report as report

    original = report.results_table
    try:
        report.results_table = lambda protocol: "NEW TABLE"
        assert update_readme(readme, "toy", also=())
    finally:
        report.results_table = original
    assert readme.read_text() == f"intro\n{BEGIN}\nNEW TABLE\n{END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        update_readme(readme, "toy", also=())


def test_comparison_figures_from_saved_codes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from hashlib_edu.analysis import intra_inter_distances, separability
    from hashlib_edu.profiles import figures_dir
    from hashlib_edu.report import comparison_figures, comparison_histograms, comparison_records
    from hashlib_edu.results import load_codes

    for method in ("lsh", "cnnbh"):
        _save(method, 12)
        _save(method, 48)
    _save("cnnbh_p0.5", 48)  # not a comparison method
    _save("cnnbh", 64)  # not a comparison code length
    records = comparison_records("toy", profile="smoke")
    assert list(records) == ["lsh", "cnnbh"] and sorted(records["cnnbh"]) == [12, 48]
    names = comparison_figures("toy", bits=48, profile="smoke")
    assert len(names) == 4
    for name in names:
        assert (figures_dir("smoke") / name).stat().st_size > 0
    seps = comparison_histograms(records, 48, "toy", profile="smoke")
    z = load_codes(tmp_path / "output" / "results" / "toy" / "codes" / "cnnbh-48.npz")
    assert seps["cnnbh"] == pytest.approx(separability(*intra_inter_distances(
        z["db_codes"], z["db_labels"], max_items=2000)))


def test_reproduce_runs_finds_every_seed_and_budget(tmp_path):
    runs = {name: _save(name, 48, seed=i)["map_tie_aware"] for i, name in enumerate(
            ("dpah", "dpah_seed1", "dpah_seed2", "orthohash", "orthohash_ep120",
             "orthohash_ep120_seed3", "dpah_alpha0", "dshnet_seed1"))}
    _save("dpah_seed1", 12)  # another code length: left out
    rows = reproduce_runs("toy", 48, root=tmp_path / "output" / "results")
    # ablations (dpah_alpha0) and methods outside the comparison (dshnet) are left out
    assert [(r["method"], r["seed"], r["budget"]) for r in rows] == [
        ("dpah", 0, "profile"), ("dpah", 1, "profile"), ("dpah", 2, "profile"),
        ("orthohash", 0, "profile"), ("orthohash", 0, "120 epochs"),
        ("orthohash", 3, "120 epochs")]
    assert rows[1]["map"] == runs["dpah_seed1"] and rows[5]["map"] == runs["orthohash_ep120_seed3"]
    assert rows[0]["train_min"] == pytest.approx(2.0)


def test_runs_table_shows_repeated_runs_only(tmp_path):
    root = tmp_path / "output" / "results"
    a, b = _save("dpah", 48)["map_tie_aware"], _save("dpah_seed1", 48, seed=1)["map_tie_aware"]
    assert a != b
    _save("cnnbh", 48)  # one run only: not in the table
    table = runs_table("toy", 48, root=root)
    row = next(line for line in table.splitlines() if line.startswith("| dpah |"))
    assert f"{a:.3f} (seed 0), {b:.3f} (seed 1)" in row
    assert f"| {(a + b) / 2:.3f} | {abs(a - b):.3f} | 2.0 |" in row
    assert "| cnnbh |" not in table
    assert "tie-aware mAP@all per seed" in table and "†" not in table
    longer = _save("cnnbh_ep120", 48)["map_tie_aware"]
    assert (f"| cnnbh | 120 epochs | {longer:.3f} (seed 0) | {longer:.3f} | — |"
            in runs_table("toy", 48, root=root))
    assert runs_table("toy", 12, root=root) == ""


def test_update_readme_adds_the_repeated_runs_table(tmp_path, monkeypatch):
    import hashlib_edu.report as report

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\n")
    monkeypatch.setattr(report, "results_table", lambda protocol: "MAIN")
    monkeypatch.setattr(report, "runs_table", lambda protocol: "RUNS")
    update_readme(readme, "toy", also=())
    assert readme.read_text() == f"intro\n{BEGIN}\nMAIN\n\nRUNS\n{END}\n"
    monkeypatch.setattr(report, "runs_table", lambda protocol: "")  # no repeated runs
    update_readme(readme, "toy", also=())
    assert readme.read_text() == f"intro\n{BEGIN}\nMAIN\n{END}\n"


def test_reproduce_runs_orders_budgets_labels_fitted_methods_and_filters_profiles(tmp_path):
    root = tmp_path / "output" / "results"
    for i, name in enumerate(("orthohash_ep120", "orthohash_ep80", "orthohash", "lsh",
                              "lsh_seed1")):
        _save(name, 48, seed=i)
    rows = reproduce_runs("toy", 48, root=root)
    assert [(r["method"], r["budget"]) for r in rows] == [
        ("lsh", "profile"), ("lsh", "profile"), ("orthohash", "profile"),
        ("orthohash", "80 epochs"), ("orthohash", "120 epochs")]
    table = runs_table("toy", 48, root=root)
    assert "| lsh | profile | " in table  # no "(None epochs)" for a fitted method
    assert len(reproduce_runs("toy", 48, profile="smoke", root=root)) == 5
    assert reproduce_runs("toy", 48, profile="quick", root=root) == []


def test_one_readme_table_per_protocol_regime_and_backbone(tmp_path):
    import json

    from hashlib_edu import results as R
    from hashlib_edu.report import regime_folders, results_table

    for regime, backbone, value in (("scratch", "small", 1), ("frozen", "efficientnet_lite0", 2),
                                    ("finetune-last", "efficientnet_lite0", 3)):
        folder = R.results_folder("cifar10-1k", "quick", regime, backbone, root=tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "orthohash-8.json").write_text(json.dumps(
            {"method": "orthohash", "bits": 8, "protocol": "cifar10-1k", "regime": regime,
             "backbone": backbone, "map": value / 10, "map_tie_aware": value / 10,
             "profile": "quick", "train_seconds": 60}))
    assert regime_folders("cifar10-1k", tmp_path) == [
        ("quick", "finetune-last", "efficientnet_lite0"), ("quick", "frozen", "efficientnet_lite0")]
    scratch = results_table("cifar10-1k", root=tmp_path)
    last = results_table("cifar10-1k", root=tmp_path, regime="finetune-last",
                         backbone="efficientnet_lite0")
    assert "| orthohash | 0.100 |" in scratch and "regime" not in scratch.split("|")[0]
    assert "| orthohash | 0.300 |" in last and "regime `finetune-last`" in last
    assert "0.200" not in last and "0.300" not in scratch
