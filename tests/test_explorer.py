"""The retrieval explorer reads saved codes and draws a query's results; its widget builds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hashlib_edu.explorer import RetrievalExplorer, saved_code_files  # noqa: E402
from hashlib_edu.results import save_results  # noqa: E402


@pytest.fixture()
def saved(synthetic):
    rng = np.random.default_rng(0)
    n = len(synthetic.labels)
    q_idx, db_idx = np.arange(10), np.arange(10, n)
    codes = np.where(rng.random((n, 8)) < 0.5, -1, 1).astype(np.int8)
    save_results("toy", 8, "cifar10-1k", codes[q_idx], codes[db_idx], (q_idx, db_idx),
                 synthetic.labels, profile="smoke")
    return codes, q_idx, db_idx


def test_explorer_query_matches_retrieve(synthetic, saved):
    codes, q_idx, db_idx = saved
    assert list(saved_code_files("cifar10-1k", "smoke")) == ["toy-8"]
    ex = RetrievalExplorer(synthetic, profile="smoke")
    r = ex.query("toy-8", 3, top_k=5)
    d = (codes[q_idx[3]] != codes[db_idx]).sum(1)
    assert r.indices.tolist() == np.argsort(d, kind="stable")[:5].tolist()
    assert r.relevant.tolist() == (synthetic.labels[db_idx[r.indices]]
                                   == synthetic.labels[q_idx[3]]).tolist()
    fig = ex.show("toy-8", 3, radius=2)
    within = (d <= 2).sum()
    assert len(fig.axes) == 1 + min(within, 30)  # the query, then the ball (capped at 30)
    assert f"{within} within" in fig._suptitle.get_text()
    with pytest.raises(KeyError, match="available"):
        ex.codes("nope-8")


def test_widget_builds(synthetic, saved):
    pytest.importorskip("ipywidgets")
    box = RetrievalExplorer(synthetic, profile="smoke").widget()
    assert box.children


def test_no_codes_is_a_clear_error(synthetic):
    with pytest.raises(FileNotFoundError, match="reproduce"):
        RetrievalExplorer(synthetic, profile="smoke")
