"""hashlib_edu.index: HammingIndex against brute force (numpy and faiss backends agree), and the
retrieval explorer's core: one query's ranking, radius lookup and precision against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hashlib_edu import index as index_module
from hashlib_edu.codes import pack_codes
from hashlib_edu.index import HammingIndex, faiss_available, retrieve

BACKENDS = [
    "numpy",
    pytest.param(
        "faiss", marks=pytest.mark.skipif(not faiss_available(), reason="faiss not installed")
    ),
]


def brute_distances(q, d):
    return [[sum(1 for b in range(len(qi)) if qi[b] != dj[b]) for dj in d] for qi in q]


def brute_knn(q, d, k):
    """Explicit loops; ties broken by database index (stable)."""
    dists, idx = [], []
    for row in brute_distances(q, d):
        order = sorted(range(len(row)), key=lambda j: (row[j], j))[:k]
        dists.append([row[j] for j in order])
        idx.append(order)
    return dists, idx


def brute_radius(q, d, r):
    out = []
    for row in brute_distances(q, d):
        hits = sorted((row[j], j) for j in range(len(row)) if row[j] <= r)
        out.append(([h[0] for h in hits], [h[1] for h in hits]))
    return out


@pytest.fixture(scope="module")
def codes():
    """8-bit codes: 120 database items for 256 possible codes -> many ties and duplicates."""
    rng = np.random.default_rng(3)
    return rng.choice([-1, 1], (15, 8)), rng.choice([-1, 1], (120, 8))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 5, 40, 120])
def test_search_matches_brute_force(codes, backend, k):
    q, d = codes
    index = HammingIndex(8, backend=backend)
    index.add(d[:50])  # several add() calls, mixed input forms
    index.add(pack_codes(d[50:90]))
    index.add((d[90:] > 0).astype(np.uint8))
    assert index.ntotal == len(index) == 120
    dist, idx = index.search(q, k)
    assert dist.dtype == np.int32 and idx.dtype == np.int64 and dist.shape == idx.shape == (15, k)
    ref_dist, ref_idx = brute_knn(q, d, k)
    assert dist.tolist() == ref_dist and idx.tolist() == ref_idx


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("r", [0, 1, 3, 8])
def test_radius_search_matches_brute_force(codes, backend, r):
    q, d = codes
    index = HammingIndex(8, backend=backend)
    index.add(d)
    got = index.radius_search(pack_codes(q), r)
    assert len(got) == len(q)
    for (dist, idx), (ref_dist, ref_idx) in zip(got, brute_radius(q, d, r), strict=True):
        assert dist.dtype == np.int32 and idx.dtype == np.int64
        assert dist.tolist() == ref_dist and idx.tolist() == ref_idx


@pytest.mark.parametrize("n_bits", [12, 48, 70])
def test_backends_agree_and_odd_lengths(n_bits):
    """Padding bits (12), one word (48), two words (70): numpy == brute force == faiss."""
    rng = np.random.default_rng(n_bits)
    q, d = rng.choice([-1, 1], (6, n_bits)), rng.choice([-1, 1], (300, n_bits))
    d[100:150] = d[:50]  # exact duplicates: ties at every distance
    numpy_index = HammingIndex(n_bits, backend="numpy")
    numpy_index.add(d)
    dist, idx = numpy_index.search(q, 25)
    ref_dist, ref_idx = brute_knn(q, d, 25)
    assert dist.tolist() == ref_dist and idx.tolist() == ref_idx
    radius = n_bits // 2 - 2
    hits = numpy_index.radius_search(q, radius)
    assert [(a.tolist(), b.tolist()) for a, b in hits] == brute_radius(q, d, radius)
    if faiss_available():
        faiss_index = HammingIndex(n_bits, backend="faiss")
        faiss_index.add(pack_codes(d))
        f_dist, f_idx = faiss_index.search(q, 25)
        np.testing.assert_array_equal(f_dist, dist)
        np.testing.assert_array_equal(f_idx, idx)
        for (a, b), (fa, fb) in zip(hits, faiss_index.radius_search(q, radius), strict=True):
            np.testing.assert_array_equal(fa, a)
            np.testing.assert_array_equal(fb, b)


def test_torch_inputs(codes):
    torch = pytest.importorskip("torch")
    q, d = codes
    index = HammingIndex(8, backend="numpy")
    index.add(torch.tensor(d, dtype=torch.float32))
    dist, idx = index.search(torch.tensor(q), 3)
    ref_dist, ref_idx = brute_knn(q, d, 3)
    assert dist.tolist() == ref_dist and idx.tolist() == ref_idx


def test_auto_backend_and_repr():
    index = HammingIndex(16)
    assert index.backend == ("faiss" if faiss_available() else "numpy")
    assert "HammingIndex(n_bits=16" in repr(index) and index.ntotal == 0


def test_validation_errors(codes, monkeypatch):
    q, d = codes
    index = HammingIndex(8, backend="numpy")
    with pytest.raises(ValueError, match="index is empty"):
        index.search(q, 1)
    index.add(d)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(q, 0)
    with pytest.raises(ValueError, match="k=121 exceeds the 120 codes"):
        index.search(q, 121)
    with pytest.raises(ValueError, match="r must be an integer >= 0"):
        index.radius_search(q, -1)
    with pytest.raises(ValueError, match="n_bits=8 needs either 8 columns"):
        index.search(np.ones((2, 6)), 1)
    with pytest.raises(ValueError, match="must be binary"):
        index.add(np.full((2, 8), 3.0))
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        HammingIndex(0)
    with pytest.raises(ValueError, match="backend must be one of"):
        HammingIndex(8, backend="gpu")
    monkeypatch.setattr(index_module, "faiss_available", lambda: False)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        HammingIndex(8, backend="faiss")
    assert HammingIndex(8).backend == "numpy"


def test_lookup_table_popcount_fallback(codes, monkeypatch):
    """The numpy < 2 path (byte lookup table) gives the same search results."""
    from hashlib_edu import hamming

    q, d = codes
    monkeypatch.setattr(hamming, "_popcount", hamming._popcount_lut)
    index = HammingIndex(8, backend="numpy")
    index.add(d)
    dist, idx = index.search(q, 7)
    ref_dist, ref_idx = brute_knn(q, d, 7)
    assert dist.tolist() == ref_dist and idx.tolist() == ref_idx


# --------------------------------------------------------------------------- one query's ranked list


@pytest.fixture()
def labelled_codes():
    rng = np.random.default_rng(0)
    q = np.where(rng.random((5, 16)) < 0.5, -1, 1).astype(np.int8)
    db = np.where(rng.random((300, 16)) < 0.5, -1, 1).astype(np.int8)
    return q, db, rng.integers(0, 3, 5), rng.integers(0, 3, 300)


def _brute_ranking(q, db, i):
    d = np.array([(q[i] != row).sum() for row in db])
    return d, sorted(range(len(db)), key=lambda j: (d[j], j))


def test_top_k_matches_brute_force(labelled_codes):
    q, db, ql, dl = labelled_codes
    for i in range(len(q)):
        d, order = _brute_ranking(q, db, i)
        r = retrieve(q, db, i, top_k=20, query_labels=ql, db_labels=dl)
        assert r.indices.tolist() == order[:20]
        assert r.distances.tolist() == [d[j] for j in order[:20]]
        assert r.relevant.tolist() == [dl[j] == ql[i] for j in order[:20]]
        assert r.precision == pytest.approx(np.mean([dl[j] == ql[i] for j in order[:20]]))
        assert r.mode == "top_k" and len(r) == 20


def test_radius_returns_the_ball_capped(labelled_codes):
    q, db, ql, dl = labelled_codes
    d, order = _brute_ranking(q, db, 0)
    ball = [j for j in order if d[j] <= 6]
    r = retrieve(q, db, 0, radius=6, max_results=None)
    assert r.indices.tolist() == ball and r.n_within == len(ball)
    assert r.relevant is None and r.precision is None
    capped = retrieve(q, db, 0, radius=6, max_results=3)
    assert capped.indices.tolist() == ball[:3] and capped.n_within == len(ball)


def test_empty_ball_has_no_precision(labelled_codes):
    q, db, ql, dl = labelled_codes
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
def test_retrieve_bad_arguments(labelled_codes, kwargs, error, match):
    q, db, _, _ = labelled_codes
    with pytest.raises(error, match=match):
        retrieve(q, db, 0, **kwargs)


def test_retrieve_bad_query_and_shapes(labelled_codes):
    q, db, _, _ = labelled_codes
    with pytest.raises(IndexError, match="out of range"):
        retrieve(q, db, 5)
    with pytest.raises(ValueError, match="bits"):
        retrieve(q, db[:, :8], 0)
    with pytest.raises(ValueError, match="binary"):
        retrieve(q * 0.5, db, 0)
