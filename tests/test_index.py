"""hashlib_edu.index: HammingIndex against brute force (numpy and faiss backends agree), and the
retrieval explorer's core: one query's ranking, radius lookup and precision against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hashlib_edu import index as index_module
from hashlib_edu.codes import pack_codes
from hashlib_edu.hamming import hamming_distance
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


# --------------------------------------------------------------------------- structures


def clustered_codes(n_bits, n, n_classes=10, flip=0.08, seed=0):
    """Codes like a supervised hash's: one centre per class, each bit flipped with ``flip``."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (n_classes, n_bits))
    labels = rng.integers(0, n_classes, n)
    return (centres[labels] ^ (rng.random((n, n_bits)) < flip)).astype(np.uint8)


def uniform_codes(n_bits, n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, (n, n_bits)).astype(np.uint8)


def flat_reference(n_bits, db):
    index = HammingIndex(n_bits, backend="numpy")
    index.add(db)
    return index


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
@pytest.mark.parametrize("n_bits, tables", [(12, 1), (12, 3), (48, 3), (48, 4), (64, 4), (70, 5)])
def test_multi_index_range_search_equals_the_flat_scan(backend, kind, n_bits, tables):
    """The contract: multi-index hashing returns exactly the flat scan's balls (same items,
    same order), on spread-out and on clustered codes, at radii below, at and above m."""
    make = uniform_codes if kind == "uniform" else clustered_codes
    db = make(n_bits, 3000, seed=1)
    rng = np.random.default_rng(2)
    queries = db[rng.choice(len(db), 20, replace=False)].copy()
    queries[::2, rng.integers(0, n_bits)] ^= 1  # half the queries one bit away from an item
    queries = np.concatenate([queries, make(n_bits, 5, seed=3)])
    flat = flat_reference(n_bits, db)
    mih = HammingIndex(n_bits, backend=backend, structure="multi-index", tables=tables)
    mih.add(db[:1000])
    mih.add(pack_codes(db[1000:]))  # several add() calls, mixed forms
    assert mih.exact and mih.ntotal == 3000
    for radius in (0, 1, 2, 3, tables + 1, 2 * tables + 1, 9):
        got = mih.range_search(queries, radius)
        ref = flat.range_search(queries, radius)
        assert len(got) == len(ref) == len(queries)
        for (d, i), (rd, ri) in zip(got, ref, strict=True):
            np.testing.assert_array_equal(i, ri)
            np.testing.assert_array_equal(d, rd)
            assert d.dtype == np.int32 and i.dtype == np.int64


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_multi_index_search_equals_the_flat_scan(backend, kind):
    make = uniform_codes if kind == "uniform" else clustered_codes
    db, queries = make(32, 2000, seed=4), make(32, 15, seed=5)
    flat = flat_reference(32, db)
    mih = HammingIndex(32, backend=backend, structure="multi-index", tables=2)
    mih.add(db)
    for k in (1, 10, 300):
        dist, idx = mih.search(queries, k)
        ref_dist, ref_idx = flat.search(queries, k)
        np.testing.assert_array_equal(dist, ref_dist)
        np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("n_bits", [12, 48])
def test_numpy_multi_index_class_by_hand(n_bits):
    db = clustered_codes(n_bits, 500, seed=6)
    mih = index_module.MultiIndexHashing(n_bits, 3)
    mih.add(db)
    flat = flat_reference(n_bits, db)
    for radius in (0, 2, 5):
        for q, (rd, ri) in zip(db[:10], flat.range_search(db[:10], radius), strict=True):
            d, i = mih.range_search(q, radius)
            assert d.tolist() == rd.tolist() and i.tolist() == ri.tolist()
            # the candidates are a superset of the ball, and only a part of the database
            assert set(ri.tolist()) <= set(mih.candidates(q, radius).tolist())


def test_substrings_keys_and_probe_counts():
    assert index_module.substring_sizes(48, 3) == [16, 16, 16]
    assert index_module.substring_sizes(70, 4) == [18, 18, 17, 17]
    bits = np.array([[1, 0, 1, 1, 0, 0, 0, 1]], np.uint8)
    assert index_module.substring_keys(bits, 2).tolist() == [[0b1011, 0b0001]]
    assert index_module.substring_keys(bits, 3).tolist() == [[0b101, 0b100, 0b01]]
    assert index_module.buckets_within(16, 0) == 1
    assert index_module.buckets_within(16, 2) == 1 + 16 + 120
    assert index_module.buckets_within(3, 9) == 8
    # 64 bits in 4 tables: radius 3 probes each table at radius 0, radius 4 at radius 1
    assert index_module.multi_index_probes(64, 4, 3) == 4
    assert index_module.multi_index_probes(64, 4, 4) == 4 * 17
    mih = index_module.MultiIndexHashing(8, 2)
    masks = mih.flip_masks(4, 1)
    assert sorted(masks.tolist()) == [0, 1, 2, 4, 8]
    with pytest.raises(ValueError, match="exceeds the 8 bits"):
        index_module.substring_sizes(8, 9)
    with pytest.raises(ValueError, match="64-bit key"):
        index_module.substring_keys(np.zeros((1, 130), np.uint8), 2)


def test_approximate_structures_and_recall():
    pytest.importorskip("faiss")
    db, queries = clustered_codes(48, 4000, seed=7), clustered_codes(48, 30, seed=8)
    flat = flat_reference(48, db)
    ref_dist, _ = flat.search(queries, 10)
    ref_hits = flat.range_search(queries, 3)
    for structure, kwargs in [("ivf", {"nlist": 16, "nprobe": 16}), ("ivf", {"nlist": 16}),
                              ("hnsw", {}), ("hnsw", {"ef_search": 16})]:
        index = HammingIndex(48, structure=structure, **kwargs)
        index.add(db)
        assert not index.exact and index.ntotal == 4000 and structure in repr(index)
        dist, idx = index.search(queries, 10)
        assert dist.shape == idx.shape == (30, 10)
        assert (np.diff(dist, axis=1) >= 0).all()
        true = np.take_along_axis(hamming_distance(queries, db), np.maximum(idx, 0), axis=1)
        np.testing.assert_array_equal(dist, np.where(idx >= 0, true, 49))  # true distances
        recall = index_module.recall_at_k(dist, ref_dist)
        assert 0.0 <= recall <= 1.0
        hits = index.range_search(queries, 3)
        for (d, i), (_, ri) in zip(hits, ref_hits, strict=True):
            assert set(i.tolist()) <= set(ri.tolist()) and (d <= 3).all()
        r_recall = index_module.range_recall(hits, ref_hits)
        if structure == "ivf" and kwargs.get("nprobe") == 16:  # every cell visited: exact
            assert recall == 1.0 and r_recall == 1.0
    assert index_module.recall_at_k(ref_dist, ref_dist) == 1.0


def test_recall_functions_by_hand():
    exact = np.array([[0, 1, 1], [2, 2, 2]])
    # an equally near item counts (row 1), a farther one does not (row 0's last)
    found = np.array([[0, 1, 3], [2, 2, 2]])
    assert index_module.recall_at_k(found, exact) == pytest.approx((2 / 3 + 1) / 2)
    missing = np.array([[0, 1, 49], [2, 2, 2]])  # -1 rows padded with n_bits + 1
    assert index_module.recall_at_k(missing, exact) == pytest.approx((2 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="same shape"):
        index_module.recall_at_k(found[:, :2], exact)
    a = (np.array([0, 1]), np.array([4, 7]))
    b = (np.array([0, 1, 1]), np.array([4, 7, 9]))
    empty = (np.empty(0, np.int32), np.empty(0, np.int64))
    assert index_module.range_recall([a, empty], [b, empty]) == pytest.approx(2 / 3)
    assert index_module.range_recall([empty], [empty]) == 1.0
    with pytest.raises(ValueError, match="result lists"):
        index_module.range_recall([a], [b, b])


def test_structure_errors_and_range_search_name():
    with pytest.raises(ValueError, match="structure must be one of"):
        HammingIndex(8, structure="lsh")
    with pytest.raises(ValueError, match="needs faiss"):
        HammingIndex(8, backend="numpy", structure="ivf")
    with pytest.raises(ValueError, match="radius must be an integer >= 0"):
        index = HammingIndex(8, backend="numpy", structure="multi-index", tables=2)
        index.add(np.zeros((3, 8), np.uint8))
        index.range_search(np.zeros((1, 8), np.uint8), -1)
    hits = index.range_search(np.zeros((1, 8), np.uint8), 0)
    assert hits[0][1].tolist() == [0, 1, 2]
    assert "structure='multi-index'" in repr(index)
