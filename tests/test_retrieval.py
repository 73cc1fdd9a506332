"""The retrieval explorer's core: ranking, radius lookup and precision against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hashlib_edu.retrieval import retrieve


@pytest.fixture()
def codes():
    rng = np.random.default_rng(0)
    q = np.where(rng.random((5, 16)) < 0.5, -1, 1).astype(np.int8)
    db = np.where(rng.random((300, 16)) < 0.5, -1, 1).astype(np.int8)
    return q, db, rng.integers(0, 3, 5), rng.integers(0, 3, 300)


def _brute(q, db, i):
    d = np.array([(q[i] != row).sum() for row in db])
    return d, sorted(range(len(db)), key=lambda j: (d[j], j))


def test_top_k_matches_brute_force(codes):
    q, db, ql, dl = codes
    for i in range(len(q)):
        d, order = _brute(q, db, i)
        r = retrieve(q, db, i, top_k=20, query_labels=ql, db_labels=dl)
        assert r.indices.tolist() == order[:20]
        assert r.distances.tolist() == [d[j] for j in order[:20]]
        assert r.relevant.tolist() == [dl[j] == ql[i] for j in order[:20]]
        assert r.precision == pytest.approx(np.mean([dl[j] == ql[i] for j in order[:20]]))
        assert r.mode == "top_k" and len(r) == 20


def test_radius_returns_the_ball_capped(codes):
    q, db, ql, dl = codes
    d, order = _brute(q, db, 0)
    ball = [j for j in order if d[j] <= 6]
    r = retrieve(q, db, 0, radius=6, max_results=None)
    assert r.indices.tolist() == ball and r.n_within == len(ball)
    assert r.relevant is None and r.precision is None
    capped = retrieve(q, db, 0, radius=6, max_results=3)
    assert capped.indices.tolist() == ball[:3] and capped.n_within == len(ball)


def test_empty_ball_has_no_precision(codes):
    q, db, ql, dl = codes
    far = -db[:1]  # the complement of database item 0 is at distance 16 from it
    r = retrieve(far, db[:1], 0, radius=0, query_labels=ql[:1], db_labels=dl[:1])
    assert len(r) == 0 and r.precision is None


def test_multi_label_relevance():
    q = np.array([[1, 1, -1, -1]], np.int8)
    db = np.array([[1, 1, -1, -1], [1, 1, -1, 1], [-1, -1, 1, 1]], np.int8)
    ql = np.array([[1, 0, 1]])
    dl = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    r = retrieve(q, db, 0, top_k=3, query_labels=ql, db_labels=dl)
    assert r.indices.tolist() == [0, 1, 2]
    assert r.relevant.tolist() == [True, False, True]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"top_k": 0}, ValueError, "top_k"),
    ({"radius": -1}, ValueError, "radius"),
    ({"query_labels": np.zeros(5)}, ValueError, "both"),
])
def test_bad_arguments(codes, kwargs, error, match):
    q, db, _, _ = codes
    with pytest.raises(error, match=match):
        retrieve(q, db, 0, **kwargs)


def test_bad_query_and_shapes(codes):
    q, db, _, _ = codes
    with pytest.raises(IndexError, match="out of range"):
        retrieve(q, db, 5)
    with pytest.raises(ValueError, match="bits"):
        retrieve(q, db[:, :8], 0)
    with pytest.raises(ValueError, match="binary"):
        retrieve(q * 0.5, db, 0)
