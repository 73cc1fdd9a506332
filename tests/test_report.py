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
    assert f"| cnnbh | 12 | {rec['map']:.3f} | 0.532 |" in table
    assert "cnnbh_p0.5" not in table
    assert "| 2.0 |" in table  # 120 s of training


def test_update_readme_replaces_between_markers(tmp_path):
    _save("orthohash", 16)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    import hashlib_edu.report as report

    original = report.results_table
    try:
        report.results_table = lambda protocol: "NEW TABLE"
        assert update_readme(readme, "toy")
    finally:
        report.results_table = original
    assert readme.read_text() == f"intro\n{BEGIN}\nNEW TABLE\n{END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        update_readme(readme, "toy")
