"""The README results table is generated from results JSON files."""

from __future__ import annotations

import numpy as np
import pytest

from hashlib_edu.report import BEGIN, END, results_table, update_readme
from hashlib_edu.results import save_results


def _save(method: str, bits: int, paper=None):
    rng = np.random.default_rng(bits)
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
    assert f"| cnnbh | {rec['map']:.3f} (*0.532*) | 2.0 | smoke |" in table  # 120 s
    assert "cnnbh_p0.5" not in table
    rec24 = _save("dsh", 24)
    table = results_table("toy", root=root)
    assert "| method | 12 bits | 24 bits |" in table
    assert f"| dsh |  | {rec24['map']:.3f} | 2.0 | smoke |" in table


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
