"""hashlib_edu.metrics against slow brute-force references, hand-computed cases and MC."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hashlib_edu import hamming as H
from hashlib_edu import metrics as M
from hashlib_edu.codes import pack_codes

# ---------------------------------------------------------------------------------------------
# Slow references: explicit loops, stable sorting by (distance, database index)
# ---------------------------------------------------------------------------------------------


def ref_distances(q, d):
    return [[sum(1 for b in range(len(qi)) if qi[b] != dj[b]) for dj in d] for qi in q]


def ref_relevant(lq, ld):
    if np.ndim(lq) == 0:
        return bool(lq == ld)
    return any(a and b for a, b in zip(lq, ld, strict=True))


def ref_ranking(dist_row):
    return sorted(range(len(dist_row)), key=lambda j: (dist_row[j], j))


def ref_ap(ranking, rel, top_k=None):
    hits, total = 0, 0.0
    for i, j in enumerate(ranking):
        if top_k is not None and i >= top_k:
            break
        if rel[j]:
            hits += 1
            total += hits / (i + 1)
    return total / hits if hits else 0.0


def ref_per_query(q, d, ql, dl):
    """Per query: (distance row, relevance row)."""
    dist = ref_distances(q, d)
    return [(dist[i], [ref_relevant(ql[i], dl[j]) for j in range(len(d))]) for i in range(len(q))]


def ref_map(q, d, ql, dl, top_k=None):
    return np.mean([ref_ap(ref_ranking(dr), rel, top_k) for dr, rel in ref_per_query(q, d, ql, dl)])


def ref_precision_radius(q, d, ql, dl, radius):
    precisions, empty = [], 0
    for dr, rel in ref_per_query(q, d, ql, dl):
        got = [j for j in range(len(d)) if dr[j] <= radius]
        if not got:
            empty += 1
        precisions.append(sum(rel[j] for j in got) / len(got) if got else 0.0)
    return np.mean(precisions), empty / len(q)


def ref_pr_curve(q, d, ql, dl, k):
    rows = ref_per_query(q, d, ql, dl)
    precision, recall = [], []
    total_relevant = sum(sum(rel) for _, rel in rows)
    for radius in range(k + 1):
        retrieved = sum(sum(1 for x in dr if x <= radius) for dr, _ in rows)
        hits = sum(sum(r for x, r in zip(dr, rel, strict=True) if x <= radius) for dr, rel in rows)
        precision.append(hits / retrieved if retrieved else np.nan)
        recall.append(hits / total_relevant)
    return np.array(precision), np.array(recall)


def ref_p_at_n(q, d, ql, dl, n):
    return np.mean(
        [sum(rel[j] for j in ref_ranking(dr)[:n]) / n for dr, rel in ref_per_query(q, d, ql, dl)]
    )


def mc_map(q, d, ql, dl, top_k=None, samples=4000, seed=0):
    """Monte-Carlo mAP over random orders inside tie groups: (mean, standard error)."""
    rng = np.random.default_rng(seed)
    dist = np.array(ref_distances(q, d), dtype=float)
    rel = np.array([[ref_relevant(ql[i], dl[j]) for j in range(len(d))] for i in range(len(q))])
    keys = dist[None] + rng.random((samples, *dist.shape))  # random order inside each distance
    order = np.argsort(keys, axis=-1)
    ranked = np.take_along_axis(np.broadcast_to(rel, keys.shape), order, axis=-1).astype(float)
    if top_k is not None:
        ranked = ranked[..., :top_k]
    hits = np.cumsum(ranked, axis=-1)
    prec_sum = (ranked * hits / np.arange(1, ranked.shape[-1] + 1)).sum(-1)
    ap = np.divide(prec_sum, hits[..., -1], out=np.zeros_like(prec_sum), where=hits[..., -1] > 0)
    maps = ap.mean(axis=1)
    return maps.mean(), maps.std(ddof=1) / math.sqrt(samples)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tied():
    """k = 8 bits, 3 classes, class-correlated codes: many ties, many relevant items."""
    rng = np.random.default_rng(42)
    k, nq, nd, classes = 8, 12, 50, 3
    proto = rng.choice([-1, 1], (classes, k))
    ql, dl = rng.integers(0, classes, nq), rng.integers(0, classes, nd)
    flip = lambda n: np.where(rng.random((n, k)) < 0.3, -1, 1)  # noqa: E731
    return proto[ql] * flip(nq), proto[dl] * flip(nd), ql, dl


@pytest.fixture(scope="module")
def multilabel():
    rng = np.random.default_rng(7)
    k, nq, nd, c = 8, 10, 40, 4
    ql = (rng.random((nq, c)) < 0.3).astype(int)
    dl = (rng.random((nd, c)) < 0.3).astype(int)
    ql[0] = 0  # a query with no label: no relevant item, scores 0
    return rng.integers(0, 2, (nq, k)), rng.integers(0, 2, (nd, k)), ql, dl


DATASETS = ["tied", "multilabel"]


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------

# Query q1 = ++++ (class 0), q2 = ---+ (class 1); database of 6 codes:
#   d0 ++++ c0 | d1 +++- c1 | d2 ++-+ c0 | d3 --++ c0 | d4 ---- c1 | d5 +-++ c1
# q1 distances [0,1,1,2,4,1]; stable ranking d0 d1 d2 d5 d3 d4, relevance 1 0 1 0 1 0.
# q2 distances [3,4,2,1,1,2]; stable ranking d3 d4 d2 d5 d0 d1, relevance 0 1 0 1 0 1.
HAND_Q = np.array([[1, 1, 1, 1], [-1, -1, -1, 1]])
HAND_D = np.array(
    [[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, -1, 1], [-1, -1, 1, 1], [-1, -1, -1, -1], [1, -1, 1, 1]]
)
HAND_QL = np.array([0, 1])
HAND_DL = np.array([0, 1, 0, 0, 1, 1])


def test_hand_distances():
    assert M.hamming_distance(HAND_Q, HAND_D).tolist() == [[0, 1, 1, 2, 4, 1], [3, 4, 2, 1, 1, 2]]


def test_hand_map_stable():
    # q1: AP = (1/1 + 2/3 + 3/5) / 3 = 34/45; AP@3 = (1/1 + 2/3) / 2 = 5/6; AP@2 = 1/1 = 1.
    # q2: AP = (1/2 + 2/4 + 3/6) / 3 = 1/2; AP@3 = (1/2) / 1; AP@2 = 1/2.
    assert M.mean_average_precision(HAND_Q[:1], HAND_D, HAND_QL[:1], HAND_DL) == pytest.approx(
        34 / 45
    )
    assert M.mean_average_precision(HAND_Q, HAND_D, HAND_QL, HAND_DL) == pytest.approx(
        (34 / 45 + 0.5) / 2
    )
    assert M.mean_average_precision(HAND_Q, HAND_D, HAND_QL, HAND_DL, top_k=3) == pytest.approx(
        (5 / 6 + 1 / 2) / 2
    )
    assert M.mean_average_precision(HAND_Q, HAND_D, HAND_QL, HAND_DL, top_k=2) == pytest.approx(
        (1 + 1 / 2) / 2
    )


def test_hand_map_expected():
    # q1 groups: d=0 {d0: rel} n=1 r=1 N=0 R=0 -> 1/1.
    #   d=1 {d1, d2, d5} n=3 r=1 N=1 R=1: d2 at rank 2, 3 or 4 -> (2/2 + 2/3 + 2/4) / 3 = 13/18.
    #   d=2 {d3: rel} N=4 R=2 -> 3/5.   d=4 {d4} irrelevant.
    #   expected AP = (1 + 13/18 + 3/5) / 3 = 209/270.
    got = M.mean_average_precision(HAND_Q[:1], HAND_D, HAND_QL[:1], HAND_DL, ties="expected")
    assert got == pytest.approx(209 / 270, abs=1e-12)
    # expected AP@3: d2 first in its group (p 1/3) -> top 3 = d0 d2 x: (1 + 1) / 2 = 1;
    #   second -> d0 x d2: (1 + 2/3) / 2 = 5/6; third -> d0 x x: 1/1.  Mean = 17/18.
    got = M.mean_average_precision(
        HAND_Q[:1], HAND_D, HAND_QL[:1], HAND_DL, top_k=3, ties="expected"
    )
    assert got == pytest.approx(17 / 18, abs=1e-12)


def test_hand_precision_within_radius():
    # radius 2: q1 retrieves d0 d1 d2 d5 d3 (3 relevant of 5), q2 d2 d3 d4 d5 (2 of 4).
    assert M.precision_within_radius(HAND_Q, HAND_D, HAND_QL, HAND_DL) == pytest.approx(0.55)
    # radius 0: q1 retrieves d0 (precision 1); q2 retrieves nothing: scores 0, empty.
    p, empty = M.precision_within_radius(
        HAND_Q, HAND_D, HAND_QL, HAND_DL, radius=0, return_empty_fraction=True
    )
    assert (p, empty) == (pytest.approx(0.5), pytest.approx(0.5))


def test_hand_pr_curve():
    # Summed over q1, q2 (6 relevant in all). Radius 0: 1 retrieved, 1 hit. Radius 1: q1 4 (2 hits)
    # + q2 2 (1 hit). Radius 2: 5 (3) + 4 (2). Radius 3: 5 (3) + 5 (2). Radius 4: 6 (3) + 6 (3).
    precision, recall = M.precision_recall_curve(HAND_Q, HAND_D, HAND_QL, HAND_DL)
    np.testing.assert_allclose(precision, [1, 3 / 6, 5 / 9, 5 / 10, 6 / 12])
    np.testing.assert_allclose(recall, [1 / 6, 3 / 6, 5 / 6, 5 / 6, 1])
    # q2 alone retrieves nothing at radius 0: precision undefined -> nan.
    precision, recall = M.precision_recall_curve(HAND_Q[1:], HAND_D, HAND_QL[1:], HAND_DL)
    assert np.isnan(precision[0]) and recall[0] == 0


def test_hand_precision_at_n():
    # q1 stable ranking relevance 1 0 1 0 1 0: P@1..6 = 1, 1/2, 2/3, 2/4, 3/5, 3/6.
    got = M.precision_at_n_curve(HAND_Q[:1], HAND_D, HAND_QL[:1], HAND_DL, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(got, [1, 1 / 2, 2 / 3, 2 / 4, 3 / 5, 3 / 6])
    assert M.precision_at_n(HAND_Q[:1], HAND_D, HAND_QL[:1], HAND_DL, 3) == pytest.approx(2 / 3)
    # expected P@3: d0 + 2 of the 3 tied {d1, d2, d5} holding 1 relevant: (1 + 2/3) / 3 = 5/9.
    got = M.precision_at_n(HAND_Q[:1], HAND_D, HAND_QL[:1], HAND_DL, 3, ties="expected")
    assert got == pytest.approx(5 / 9)


# ---------------------------------------------------------------------------------------------
# Against the brute-force references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", DATASETS)
def test_distances_match_reference(data, request):
    q, d, _, _ = request.getfixturevalue(data)
    got = M.hamming_distance(q, d)
    assert got.dtype == np.int32 and got.shape == (len(q), len(d))
    assert got.tolist() == ref_distances(q, d)


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("top_k", [None, 1, 5, 17, 40, 1000])
def test_map_stable_matches_reference(data, top_k, request):
    q, d, ql, dl = request.getfixturevalue(data)
    got = M.mean_average_precision(q, d, ql, dl, top_k=top_k)
    assert got == pytest.approx(ref_map(q, d, ql, dl, top_k), abs=1e-12)


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("radius", [0, 1, 2, 3, 8, 20])
def test_precision_within_radius_matches_reference(data, radius, request):
    q, d, ql, dl = request.getfixturevalue(data)
    p_ref, empty_ref = ref_precision_radius(q, d, ql, dl, radius)
    p, empty = M.precision_within_radius(q, d, ql, dl, radius=radius, return_empty_fraction=True)
    assert p == pytest.approx(p_ref, abs=1e-12) and empty == pytest.approx(empty_ref)
    assert M.precision_within_radius(q, d, ql, dl, radius=radius) == pytest.approx(p_ref)


@pytest.mark.parametrize("data", DATASETS)
def test_pr_curve_matches_reference(data, request):
    q, d, ql, dl = request.getfixturevalue(data)
    precision, recall = M.precision_recall_curve(q, d, ql, dl)
    p_ref, r_ref = ref_pr_curve(q, d, ql, dl, q.shape[1])
    np.testing.assert_allclose(precision, p_ref, atol=1e-12)
    np.testing.assert_allclose(recall, r_ref, atol=1e-12)
    assert recall[-1] == 1.0


@pytest.mark.parametrize("data", DATASETS)
def test_precision_at_n_matches_reference(data, request):
    q, d, ql, dl = request.getfixturevalue(data)
    ns = [1, 2, 7, 20, len(d)]
    np.testing.assert_allclose(
        M.precision_at_n_curve(q, d, ql, dl, ns), [ref_p_at_n(q, d, ql, dl, n) for n in ns]
    )
    assert M.precision_at_n(q, d, ql, dl, 7) == pytest.approx(ref_p_at_n(q, d, ql, dl, 7))


# ---------------------------------------------------------------------------------------------
# Tie-aware (expected) metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "rel_before", "n", "r"),
    [(0, 0, 1, 1), (0, 0, 4, 2), (3, 1, 5, 3), (7, 0, 6, 6), (2, 2, 6, 1), (5, 3, 4, 0)],
)
def test_group_closed_form_matches_enumeration_and_mc(before, rel_before, n, r):
    """S(N, R, n, r): exact average over all placements of the r relevant items, and MC."""
    exact = []
    for places in itertools.combinations(range(1, n + 1), r):  # equally likely placements
        exact.append(sum((rel_before + j + 1) / (before + t) for j, t in enumerate(places)))
    h = M._harmonic(before + n)
    got = float(M._expected_group_sum(np.array(before), rel_before, np.array(n), r, h))
    assert got == pytest.approx(np.mean(exact), abs=1e-12)
    rng = np.random.default_rng(0)
    samples = np.array(
        [
            sum((rel_before + j + 1) / (before + t + 1) for j, t in enumerate(np.sort(p[:r])))
            for p in (rng.permutation(n) for _ in range(3000))
        ]
    )
    se = samples.std(ddof=1) / math.sqrt(len(samples))
    assert abs(got - samples.mean()) <= 4 * se + 1e-12


def test_hypergeometric_matches_math_comb():
    n, r, m = np.array([10, 7, 5, 1, 30]), np.array([4, 7, 0, 1, 12]), np.array([6, 3, 5, 1, 17])
    x, prob = M._hypergeometric(n, r, m)
    for i in range(len(n)):
        pmf = {
            v: math.comb(r[i], v) * math.comb(n[i] - r[i], m[i] - v) / math.comb(n[i], m[i])
            for v in range(0, min(m[i], r[i]) + 1)
        }
        got: dict[int, float] = {}
        for v, pv in zip(x[i], prob[i], strict=True):
            got[int(v)] = got.get(int(v), 0.0) + pv
        for v, pv in pmf.items():
            assert got.get(v, 0.0) == pytest.approx(pv, abs=1e-12)


def test_expected_map_exact_by_enumerating_tie_orders():
    """6 items in tie groups of sizes 3, 2, 1: average stable AP over all 3! * 2! orders."""
    q = np.array([[1, 1, 1]])
    d = np.array([[1, 1, -1], [1, -1, 1], [-1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]])
    ql, dl = np.array([1]), np.array([0, 1, 1, 0, 1, 0])
    dist = ref_distances(q, d)[0]  # [1, 1, 1, 2, 2, 0]
    groups = [[j for j in range(6) if dist[j] == g] for g in sorted(set(dist))]
    rel = [dl[j] == ql[0] for j in range(6)]
    rankings = [
        [j for group in orders for j in group]
        for orders in itertools.product(*(itertools.permutations(g) for g in groups))
    ]
    assert len(rankings) == 12
    for top_k in (None, 1, 2, 3, 4, 5):
        got = M.mean_average_precision(q, d, ql, dl, top_k=top_k, ties="expected")
        assert got == pytest.approx(np.mean([ref_ap(rk, rel, top_k) for rk in rankings]), abs=1e-12)
    ns = [1, 2, 3, 4, 6]
    p_at = [np.mean([sum(rel[j] for j in rk[:n]) / n for rk in rankings]) for n in ns]
    got = M.precision_at_n_curve(q, d, ql, dl, ns, ties="expected")
    np.testing.assert_allclose(got, p_at, atol=1e-12)


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("top_k", [None, 3, 20])
def test_expected_map_matches_monte_carlo(data, top_k, request):
    q, d, ql, dl = request.getfixturevalue(data)
    mean, se = mc_map(q, d, ql, dl, top_k)
    got = M.mean_average_precision(q, d, ql, dl, top_k=top_k, ties="expected")
    assert abs(got - mean) <= 4 * se + 1e-12


def test_expected_equals_stable_without_ties():
    # 16-bit codes, 6 database items at distinct distances 0..5 from the query: no ties.
    q = np.ones((1, 16), dtype=int)
    d = np.array([[-1] * i + [1] * (16 - i) for i in (3, 0, 5, 1, 4, 2)])
    ql, dl = np.array([0]), np.array([0, 1, 0, 0, 1, 1])
    for top_k in (None, 2, 4):
        stable = M.mean_average_precision(q, d, ql, dl, top_k=top_k)
        assert M.mean_average_precision(
            q, d, ql, dl, top_k=top_k, ties="expected"
        ) == pytest.approx(stable, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# evaluate_retrieval: every headline metric in one pass
# ---------------------------------------------------------------------------------------------


def separate_scores(q, d, ql, dl, top_k, radius, ns, **kw):
    """What evaluate_retrieval must equal: the separate functions, one scan each."""
    args = (q, d, ql, dl)
    p_r, empty = M.precision_within_radius(*args, radius, True, **kw)
    return M.RetrievalScores(
        map=M.mean_average_precision(*args, **kw),
        map_tie_aware=M.mean_average_precision(*args, ties="expected", **kw),
        map_at_k=M.mean_average_precision(*args, top_k=top_k, **kw),
        map_at_k_tie_aware=M.mean_average_precision(*args, top_k=top_k, ties="expected", **kw),
        p_within_radius=p_r,
        empty_fraction=empty,
        p_at_n=M.precision_at_n_curve(*args, ns, **kw),
        p_at_n_tie_aware=M.precision_at_n_curve(*args, ns, ties="expected", **kw),
    )


def assert_scores_equal(got, want, atol=1e-12):
    for field in M.RetrievalScores.__dataclass_fields__:
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), atol=atol,
                                   rtol=0, err_msg=field)


def few_bits(k, nq=9, nd=60, seed=3, multi=False):
    """k in {1, 2, 3} bits: almost every item ties with many others."""
    rng = np.random.default_rng(seed)
    q, d = rng.choice([-1, 1], (nq, k)), rng.choice([-1, 1], (nd, k))
    if multi:
        ql, dl = (rng.random((nq, 3)) < 0.4).astype(int), (rng.random((nd, 3)) < 0.4).astype(int)
    else:
        ql, dl = rng.integers(0, 3, nq), np.sort(rng.integers(0, 3, nd))  # database by class
    return q, d, ql, dl


@pytest.mark.parametrize(
    "case", ["tied", "multilabel", "k1", "k2", "k3", "k3-multi", "k2-packed", "k130"]
)
@pytest.mark.parametrize(("top_k", "radius", "ns"), [(9, 2, [1, 5, 9, 40]), (1000, 0, [3])])
def test_evaluate_retrieval_equals_the_separate_functions(case, top_k, radius, ns, request):
    kw = {}
    if case in DATASETS:
        q, d, ql, dl = request.getfixturevalue(case)
    elif case == "k130":  # uint16 distances, three 64-bit words
        rng = np.random.default_rng(130)
        q, d = rng.choice([-1, 1], (5, 130)), rng.choice([-1, 1], (40, 130))
        ql, dl = rng.integers(0, 2, 5), rng.integers(0, 2, 40)
    else:
        q, d, ql, dl = few_bits(int(case[1]), multi=case.endswith("multi"))
        if case.endswith("packed"):
            q, d, kw = pack_codes(q), pack_codes(d), {"n_bits": 2}
    got = M.evaluate_retrieval(q, d, ql, dl, top_k=top_k, radius=radius, ns=ns, **kw)
    assert_scores_equal(got, separate_scores(q, d, ql, dl, top_k, radius, ns, **kw))
    assert got.p_at_n.shape == got.p_at_n_tie_aware.shape == (len(ns),)


def test_evaluate_retrieval_does_not_depend_on_blocks(monkeypatch):
    q, d, ql, dl = few_bits(3, nq=13, nd=50)
    reference = M.evaluate_retrieval(q, d, ql, dl, top_k=7, ns=[4, 20])
    monkeypatch.setattr(M, "_BLOCK_ELEMENTS", 2 * len(d))  # blocks of 2 queries
    assert_scores_equal(M.evaluate_retrieval(q, d, ql, dl, top_k=7, ns=[4, 20]), reference)


@pytest.mark.parametrize("k", [3, 8, 130])
def test_ranked_counts_match_both_kernels(k):
    rng = np.random.default_rng(k)
    q, d = rng.choice([-1, 1], (6, k)), rng.choice([-1, 1], (70, k))
    dist = M.hamming_distance(q, d).astype(M.distance_dtype(k))
    rel = rng.random(dist.shape) < 0.3
    positions, n_items, n_rel = M._ranked_counts(dist, rel, k)
    want_items, want_rel = M._distance_counts(dist, rel, k)
    np.testing.assert_array_equal(n_items, want_items)
    np.testing.assert_array_equal(n_rel, want_rel)
    for got, want in zip(positions, M._relevant_positions(dist, rel), strict=True):
        np.testing.assert_array_equal(got, want)


def tie_orders(dist_row):
    """Every ranking that sorts by distance, ties in any order (all equally likely)."""
    groups = [[j for j in range(len(dist_row)) if dist_row[j] == g] for g in sorted(set(dist_row))]
    return [[j for group in orders for j in group]
            for orders in itertools.product(*(itertools.permutations(g) for g in groups))]


def test_tie_aware_p_at_n_and_map_at_k_by_enumerating_every_tie_order():
    """2-bit codes, 7 database items: the exact average over every order of every tie."""
    q = np.array([[1, 1], [-1, 1], [1, -1]])
    d = np.array([[1, 1], [-1, 1], [1, 1], [-1, -1], [1, -1], [-1, 1], [1, 1]])
    ql, dl = np.array([0, 1, 0]), np.array([0, 0, 1, 1, 0, 1, 1])
    rows = ref_per_query(q, d, ql, dl)
    orders = [tie_orders(dr) for dr, _ in rows]
    assert [len(o) for o in orders] == [36, 48, 48]  # 3!3!1!, 2!4!1!, 1!4!2!
    top_k, ns = 4, [1, 2, 3, 4, 5, 7]
    got = M.evaluate_retrieval(q, d, ql, dl, top_k=top_k, ns=ns)
    want_map_k = np.mean([np.mean([ref_ap(rk, rel, top_k) for rk in o])
                          for o, (_, rel) in zip(orders, rows, strict=True)])
    want_p = [np.mean([np.mean([sum(rel[j] for j in rk[:n]) / n for rk in o])
                       for o, (_, rel) in zip(orders, rows, strict=True)]) for n in ns]
    assert got.map_at_k_tie_aware == pytest.approx(want_map_k, abs=1e-12)
    np.testing.assert_allclose(got.p_at_n_tie_aware, want_p, atol=1e-12, rtol=0)
    # the stable values differ here, so returning them instead would fail the test
    assert abs(got.map_at_k - want_map_k) > 1e-3
    assert np.abs(got.p_at_n - want_p).max() > 1e-3


def mc_p_at_n_and_map_at_k(q, d, ql, dl, top_k, ns, samples=4000, seed=1):
    """Monte-Carlo over random tie orders: (mean, standard error) of mAP@K and of each P@n."""
    rng = np.random.default_rng(seed)
    dist = np.array(ref_distances(q, d), dtype=float)
    rel = np.array([[ref_relevant(ql[i], dl[j]) for j in range(len(d))] for i in range(len(q))])
    order = np.argsort(dist[None] + rng.random((samples, *dist.shape)), axis=-1)
    ranked = np.take_along_axis(np.broadcast_to(rel, order.shape), order, axis=-1).astype(float)
    hits = np.cumsum(ranked, axis=-1)
    top, top_hits = ranked[..., :top_k], hits[..., :top_k]
    prec_sum = (top * top_hits / np.arange(1, top_k + 1)).sum(-1)
    ap = np.divide(prec_sum, top_hits[..., -1], out=np.zeros_like(prec_sum),
                   where=top_hits[..., -1] > 0)
    per_sample = np.stack([ap.mean(1)] + [hits[..., n - 1].mean(1) / n for n in ns], axis=1)
    return per_sample.mean(0), per_sample.std(0, ddof=1) / math.sqrt(samples)


@pytest.mark.parametrize("data", DATASETS)
def test_tie_aware_p_at_n_and_map_at_k_match_monte_carlo(data, request):
    q, d, ql, dl = request.getfixturevalue(data)
    top_k, ns = 6, [3, 10, 25]
    mean, se = mc_p_at_n_and_map_at_k(q, d, ql, dl, top_k, ns)
    got = M.evaluate_retrieval(q, d, ql, dl, top_k=top_k, ns=ns)
    got_all = np.array([got.map_at_k_tie_aware, *got.p_at_n_tie_aware])
    assert np.all(np.abs(got_all - mean) <= 4 * se + 1e-12), (got_all, mean, se)


def test_evaluate_retrieval_validation():
    args = (HAND_Q, HAND_D, HAND_QL, HAND_DL)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        M.evaluate_retrieval(*args, top_k=0)
    with pytest.raises(ValueError, match="radius must be an integer >= 0"):
        M.evaluate_retrieval(*args, radius=-1)
    with pytest.raises(ValueError, match="exceeds the database size 6"):
        M.evaluate_retrieval(*args, ns=[2, 7])
    with pytest.raises(ValueError, match="ns must be a non-empty"):
        M.evaluate_retrieval(*args, ns=[])
    with pytest.raises(ValueError, match="database is empty"):
        M.evaluate_retrieval(HAND_Q, np.ones((0, 4)), HAND_QL, np.zeros(0), ns=[1])


# ---------------------------------------------------------------------------------------------
# Input forms: {0,1}, packed, torch, long codes, multi-word codes
# ---------------------------------------------------------------------------------------------


def all_metrics(q, d, ql, dl, **kw):
    return [
        M.mean_average_precision(q, d, ql, dl, **kw),
        M.mean_average_precision(q, d, ql, dl, top_k=9, ties="expected", **kw),
        M.precision_within_radius(q, d, ql, dl, radius=2, **kw),
        *M.precision_recall_curve(q, d, ql, dl, **kw)[0][:3],
        M.precision_at_n(q, d, ql, dl, 5, **kw),
    ]


def test_01_codes_packed_codes_and_torch_agree(tied):
    q, d, ql, dl = tied
    reference = all_metrics(q, d, ql, dl)
    np.testing.assert_allclose(all_metrics((q > 0).astype(int), (d > 0), ql, dl), reference)
    np.testing.assert_allclose(
        all_metrics(pack_codes(q), pack_codes(d), ql, dl, n_bits=q.shape[1]), reference
    )
    np.testing.assert_allclose(
        all_metrics(q.astype(np.float32), pack_codes(d), ql, dl, n_bits=q.shape[1]), reference
    )
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(
        all_metrics(
            torch.tensor(q, dtype=torch.float32),
            torch.tensor(d),
            torch.tensor(ql),
            torch.tensor(dl),
        ),
        reference,
    )


def test_multilabel_bool_labels_and_torch(multilabel):
    q, d, ql, dl = multilabel
    reference = ref_map(q, d, ql, dl)
    assert M.mean_average_precision(q, d, ql.astype(bool), dl.astype(bool)) == pytest.approx(
        reference
    )
    torch = pytest.importorskip("torch")
    assert M.mean_average_precision(
        torch.tensor(q), torch.tensor(d), torch.tensor(ql), torch.tensor(dl)
    ) == pytest.approx(reference)


@pytest.mark.parametrize("k", [12, 64, 70, 130])
def test_long_and_odd_code_lengths(k):
    """Padding bits (k not a multiple of 8), several 64-bit words, uint16 distances (k > 127)."""
    rng = np.random.default_rng(k)
    q, d = rng.choice([-1, 1], (4, k)), rng.choice([-1, 1], (30, k))
    ql, dl = rng.integers(0, 2, 4), rng.integers(0, 2, 30)
    dist = M.hamming_distance(q, d)
    assert dist.tolist() == ref_distances(q, d)
    np.testing.assert_array_equal(M.hamming_distance(pack_codes(q), pack_codes(d), n_bits=k), dist)
    assert M.mean_average_precision(q, d, ql, dl) == pytest.approx(ref_map(q, d, ql, dl))
    p, r = M.precision_recall_curve(q, d, ql, dl)
    assert p.shape == r.shape == (k + 1,)


def test_blocks_cover_many_queries(monkeypatch, tied):
    """Tiny blocks: results do not depend on how queries are chunked."""
    q, d, ql, dl = tied
    reference = all_metrics(q, d, ql, dl)
    monkeypatch.setattr(M, "_BLOCK_ELEMENTS", 3 * len(d))
    np.testing.assert_allclose(all_metrics(q, d, ql, dl), reference)


def test_lut_popcount_matches_bitwise_count():
    words = np.random.default_rng(0).integers(0, 2**63, (5, 7), dtype=np.uint64) * np.uint64(3)
    expected = [[bin(int(w)).count("1") for w in row] for row in words]
    assert H._popcount_lut(words).tolist() == expected
    assert H._popcount(words).tolist() == expected


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(query_labels=np.array([0])), "query_labels has 1 rows but query_codes has 2"),
        (dict(db_labels=np.arange(5)), "db_labels has 5 rows but db_codes has 6"),
        (dict(query_codes=np.ones((2, 5))), "5 bits but database codes have 4"),
        (dict(query_codes=np.array([[1, 0.5, 1, 1], [1, 1, 1, 1]])), "query_codes must be binary"),
        (dict(db_codes=np.full((6, 4), 2)), "db_codes must be binary"),
        (dict(db_codes=np.ones((0, 4))), "database is empty"),
        (dict(query_codes=np.ones((0, 4)), query_labels=np.zeros(0)), "no queries"),
        (dict(query_codes=np.ones(4)), "must be a 2-D array"),
        (dict(query_codes=np.ones((2, 0)), db_codes=np.ones((6, 0))), "0 bits"),
        (dict(db_codes=pack_codes(HAND_D) + 2), "pass n_bits="),
        (dict(top_k=0), "top_k must be a positive integer"),
        (dict(top_k=-3), "top_k must be a positive integer"),
        (dict(top_k=2.5), "top_k must be a positive integer"),
        (dict(ties="random"), "ties must be one of"),
        (dict(query_labels=np.array([[0, 1], [1, 0]])), "both be class ids"),
        (
            dict(
                query_labels=np.array([[0], [1]]),
                db_labels=np.array([[0], [1], [2], [0], [1], [1]]),
            ),
            "must be multi-hot",
        ),
    ],
)
def test_map_validation_errors(kwargs, match):
    args = dict(query_codes=HAND_Q, db_codes=HAND_D, query_labels=HAND_QL, db_labels=HAND_DL)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        M.mean_average_precision(**args)


def test_other_validation_errors():
    args = (HAND_Q, HAND_D, HAND_QL, HAND_DL)
    with pytest.raises(ValueError, match="radius must be an integer >= 0"):
        M.precision_within_radius(*args, radius=-1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        M.precision_at_n(*args, 0)
    with pytest.raises(ValueError, match="exceeds the database size 6"):
        M.precision_at_n(*args, 7)
    with pytest.raises(ValueError, match="ns must be a non-empty"):
        M.precision_at_n_curve(*args, [])
    with pytest.raises(ValueError, match="ties must be one of"):
        M.precision_at_n(*args, 2, ties="best")
    with pytest.raises(ValueError, match="n_bits must be a positive integer"):
        M.hamming_distance(pack_codes(HAND_Q), pack_codes(HAND_D), n_bits=0)
    with pytest.raises(ValueError, match="n_bits=12 needs either 12 columns"):
        M.hamming_distance(pack_codes(HAND_Q), pack_codes(HAND_D), n_bits=12)
    with pytest.raises(ValueError, match="4 bits but database codes have 5"):
        M.hamming_distance(HAND_Q, np.ones((3, 5)))
