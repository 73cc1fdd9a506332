"""Retrieval metrics for binary codes: Hamming ranking, mAP, precision within a radius, PR, P@N.

Conventions (shared by every function here)
-------------------------------------------
* Codes: ``(n, k)`` in ``{-1, +1}`` or in ``{0, 1}`` (bit ``1 <=> +1``), as numpy arrays or
  torch tensors; or packed ``(n, ceil(k / 8))`` uint8 (``hashlib_edu.codes.pack_codes``) with
  the number of bits passed as ``n_bits=k`` (then both query and database codes are packed).
* Labels: ``(n,)`` class ids, or ``(n, c)`` multi-hot in ``{0, 1}``. A database item is
  *relevant* to a query when they have the same class id / share at least one label.
* Ranking: the database is ranked by Hamming distance to the query. Distances take only
  ``k + 1`` values, so many items tie. ``ties="stable"`` keeps equal distances in database
  order (what ``np.argsort(dist, kind="stable")`` gives: reproducible); ``ties="expected"``
  averages exactly over a uniformly random order inside every group of equal distance
  (He et al., CVPR 2018, "Hashing as tie-aware learning to rank").
* Every metric is a mean over queries; a query with no relevant item scores 0.

How it is computed
------------------
Queries are processed in blocks (memory stays at a few tens of MB whatever ``nq``). For each
block, distances come from XOR + popcount of 64-bit words (:mod:`hashlib_edu.hamming`, whose
public names are importable from here too). Everything tie-aware and every radius-based
metric needs only, per query, the number of items and of relevant items at each distance
``0..k`` (:func:`_distance_counts`). The stable order needs, per query, the positions of the
relevant items in the ranking (:func:`_relevant_positions`): a radix (counting) ``argsort`` of
the ``uint8`` distances, O(nd) per query. :func:`evaluate_retrieval` computes every headline
metric from one scan: one distance computation per block and one ``argsort`` per query, from
which both the positions and the counts are read (:func:`_ranked_counts`).

Expected (tie-aware) AP, closed form
------------------------------------
Take a group of ``n`` items at equal distance, ``r`` of them relevant, preceded by ``N`` items of
which ``R`` are relevant. A relevant item of the group lands at group position ``t`` (uniform on
``1..n``); the other ``r - 1`` relevant items are then spread at random over the other ``n - 1``
places, so on average ``(t - 1) a`` of them precede it, with ``a = (r - 1) / (n - 1)`` (0 when
``n = 1``). Its expected precision is ``(R + 1 + (t - 1) a) / (N + t)
= a + (R + 1 - a (N + 1)) / (N + t)``, and summing over ``t`` and over the ``r`` items::

    S(N, R, n, r) = r a + (r / n) (R + 1 - a (N + 1)) (H[N + n] - H[N])

with harmonic numbers ``H[m] = 1 + 1/2 + ... + 1/m``. Expected AP = ``sum_groups S / R_total``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codes import as_numpy
from .hamming import (
    code_words,
    distance_dtype,
    distances_into,
    hamming_distance,
    int_at_least,
    packed_words,
    parse_codes,
    positive_int,
    unpacked_bits,
)

__all__ = [
    "euclidean_precision_at_n",
    "RetrievalScores",
    "evaluate_retrieval",
    "positive_int",
    "int_at_least",
    "parse_codes",
    "unpacked_bits",
    "packed_words",
    "distance_dtype",
    "distances_into",
    "hamming_distance",
    "mean_average_precision",
    "precision_within_radius",
    "precision_recall_curve",
    "precision_at_n",
    "precision_at_n_curve",
]

TIES = ("stable", "expected")
_BLOCK_ELEMENTS = 1 << 22  # query rows x database items per block (a few MB per array)

# ---------------------------------------------------------------------------------------------
# Validation helpers (codes: hashlib_edu.hamming, whose public names are re-exported here)
# ---------------------------------------------------------------------------------------------


def _check_ties(ties: str) -> str:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}; got {ties!r}.")
    return ties


def _check_ns(ns: Sequence[int] | np.ndarray) -> list[int]:
    ns_arr = np.asarray(as_numpy(ns))
    if ns_arr.ndim != 1 or ns_arr.size == 0:
        raise ValueError(f"ns must be a non-empty 1-D sequence of integers; got {ns!r}.")
    return [positive_int(n, "n") for n in ns_arr.tolist()]


def _check_ns_fit(ns: list[int], nd: int) -> None:
    if max(ns) > nd:
        raise ValueError(f"n={max(ns)} exceeds the database size {nd}; use n <= {nd}.")


def _check_finite_labels(arr: np.ndarray, name: str) -> None:
    """Refuse NaN / infinite labels: such an item is never relevant, so it would be scored as a
    silent miss instead of flagged."""
    if np.issubdtype(arr.dtype, np.inexact):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = np.argwhere(bad)[0].tolist()
            raise ValueError(
                f"{name} holds {int(bad.sum())} NaN or infinite value(s) (first at index "
                f"{first[0] if len(first) == 1 else tuple(first)}): every item needs a class "
                "id. Drop the unlabelled items from both the codes and the labels, or give "
                "them a class."
            )


def _labels(labels: Any, n: int, name: str, codes_name: str) -> np.ndarray:
    arr = as_numpy(labels)
    _check_finite_labels(arr, name)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be (n,) class ids or (n, c) multi-hot; got shape {arr.shape}."
        )
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but {codes_name} has {n}; pass one label "
            "(row) per code, in the same order."
        )
    if arr.ndim == 2:
        if arr.dtype == bool:
            return arr.astype(np.float32)
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(
                f"2-D {name} must be multi-hot (values 0/1); for class ids pass a 1-D array "
                "(e.g. labels.ravel())."
            )
        return arr.astype(np.float32)
    return arr


@dataclass
class _Problem:
    """Validated inputs of a retrieval evaluation."""

    q_words: np.ndarray  # (nq, w) uint64
    db_cols: np.ndarray  # (w, nd) uint64
    k: int
    q_labels: np.ndarray  # (nq,) or (nq, c) float32
    db_labels: np.ndarray  # (nd,) or (c, nd) float32 (transposed for a matmul)
    multi_label: bool

    @property
    def nq(self) -> int:
        return self.q_words.shape[0]

    @property
    def nd(self) -> int:
        return self.db_cols.shape[1]

    def relevance(self, rows: slice) -> np.ndarray:
        """``(b, nd)`` bool: database item relevant to each query of ``rows``."""
        if self.multi_label:
            return (self.q_labels[rows] @ self.db_labels) > 0
        return self.q_labels[rows, None] == self.db_labels[None, :]


def _problem(
    query_codes: Any, db_codes: Any, query_labels: Any, db_labels: Any, n_bits: int | None
) -> _Problem:
    q_words, db_cols, k = code_words(query_codes, db_codes, n_bits)
    ql = _labels(query_labels, q_words.shape[0], "query_labels", "query_codes")
    dl = _labels(db_labels, db_cols.shape[1], "db_labels", "db_codes")
    if ql.ndim != dl.ndim or (ql.ndim == 2 and ql.shape[1] != dl.shape[1]):
        raise ValueError(
            f"query_labels {ql.shape} and db_labels {dl.shape} must both be class ids (n,) or "
            "both multi-hot (n, c) with the same number of classes c."
        )
    multi = ql.ndim == 2
    if multi:
        dl = np.ascontiguousarray(dl.T)
    return _Problem(q_words, db_cols, k, ql, dl, multi)


# ---------------------------------------------------------------------------------------------
# The scan: per query block, distances + relevance -> counts and/or stable positions
# ---------------------------------------------------------------------------------------------


def _blocks(p: _Problem) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield ``(rows, dist (b, nd) uint, relevant (b, nd) bool)`` over blocks of queries."""
    size = max(1, min(64, _BLOCK_ELEMENTS // p.nd))
    dtype = distance_dtype(p.k)
    for start in range(0, p.nq, size):
        rows = slice(start, min(start + size, p.nq))
        dist = np.empty((rows.stop - start, p.nd), dtype=dtype)
        distances_into(dist, p.q_words[rows], p.db_cols)
        yield rows, dist, p.relevance(rows)


def _distance_counts(dist: np.ndarray, rel: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query and distance: number of items and of relevant items.

    Args:
        dist: ``(b, nd)`` Hamming distances in ``0..k``.
        rel: ``(b, nd)`` bool relevance.

    Returns:
        ``(n_items, n_relevant)``, each ``(b, k + 1)`` int64; column ``d`` counts distance ``d``.
    """
    key = dist * dist.dtype.type(2)
    key += rel
    counts = np.empty((dist.shape[0], 2 * (k + 1)), dtype=np.int64)
    for i in range(dist.shape[0]):
        counts[i] = np.bincount(key[i], minlength=2 * (k + 1))
    n_irrelevant, n_relevant = counts[:, 0::2], counts[:, 1::2]
    return n_irrelevant + n_relevant, n_relevant


def _relevant_positions(dist: np.ndarray, rel: np.ndarray) -> list[np.ndarray]:
    """0-based positions of the relevant items in each query's stable ranking.

    Items are ranked by distance, equal distances in database order: a radix (counting)
    ``argsort`` of the small-integer distances, row by row so the work stays in cache.

    Args:
        dist: ``(b, nd)`` distances; rel: ``(b, nd)`` bool relevance.

    Returns:
        ``b`` int64 arrays of increasing positions, one per query.
    """
    ranked = np.empty(dist.shape[1], dtype=bool)
    positions = []
    for i in range(dist.shape[0]):
        np.take(rel[i], np.argsort(dist[i], kind="stable"), out=ranked)
        positions.append(np.flatnonzero(ranked))
    return positions


def _ranked_counts(
    dist: np.ndarray, rel: np.ndarray, k: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """:func:`_relevant_positions` and :func:`_distance_counts` from one ``argsort`` per query.

    The stable ranking gives the positions of the relevant items; the sorted distances give
    where each distance group starts (so its size), and the positions how many relevant items
    come before each start.

    Args:
        dist: ``(b, nd)`` distances in ``0..k``; rel: ``(b, nd)`` bool relevance.

    Returns:
        ``(positions, n_items, n_relevant)``: ``b`` int64 arrays of increasing 0-based
        positions, and two ``(b, k + 1)`` int64 counts per distance.
    """
    ranked = np.empty(dist.shape[1], dtype=bool)
    ranked_dist = np.empty(dist.shape[1], dtype=dist.dtype)
    edges = np.arange(k + 2, dtype=dist.dtype)  # group d spans ranks starts[d]..starts[d+1]-1
    starts = np.empty((dist.shape[0], k + 2), dtype=np.int64)
    rel_starts = np.empty_like(starts)
    positions = []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        np.take(rel[i], order, out=ranked)
        np.take(dist[i], order, out=ranked_dist)
        positions.append(np.flatnonzero(ranked))
        starts[i] = np.searchsorted(ranked_dist, edges)
        rel_starts[i] = np.searchsorted(positions[-1], starts[i])
    return positions, np.diff(starts, axis=1), np.diff(rel_starts, axis=1)


def _harmonic(n: int) -> np.ndarray:
    """``H[m] = sum_{i=1..m} 1/i`` for ``m = 0..n`` (float64). Differences ``H[a] - H[b]`` are
    accurate to ~1e-15 * (a - b) absolute, i.e. ~1e-10 relative for a million items."""
    h = np.zeros(n + 1)
    np.cumsum(1.0 / np.arange(1, n + 1), out=h[1:])
    return h


def _expected_group_sum(
    before: np.ndarray, rel_before: np.ndarray, n: np.ndarray, r: np.ndarray, h: np.ndarray
) -> np.ndarray:
    """Expected sum of precisions at the relevant items of a randomly ordered tie group.

    Args (broadcastable integer arrays):
        before: ``N``, items ranked before the group.
        rel_before: ``R``, relevant items among them.
        n: group size. r: relevant items in the group (``0 <= r <= n``).
        h: harmonic numbers from :func:`_harmonic`, long enough for ``N + n``.

    Returns:
        ``S = r a + (r / n) (R + 1 - a (N + 1)) (H[N + n] - H[N])``, ``a = (r-1)/(n-1)``
        (``a = 0`` for ``n <= 1``; ``S = 0`` for ``n = 0``). See the module docstring.
    """
    n_f = np.asarray(n, dtype=np.float64)
    r_f = np.asarray(r, dtype=np.float64)
    a = np.divide(r_f - 1.0, n_f - 1.0, out=np.zeros(np.broadcast(n_f, r_f).shape), where=n_f > 1)
    frac = np.divide(r_f, n_f, out=np.zeros_like(a), where=n_f > 0)
    span = h[before + n] - h[before]
    return r_f * a + frac * (rel_before + 1.0 - a * (before + 1.0)) * span


def _exclusive_cumsum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(x, axis=1) - x


def _cut(n_items: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Locate the top-``top`` boundary in each query's distance groups.

    Args:
        n_items: ``(b, k + 1)`` items per distance; ``1 <= top <= nd``.

    Returns:
        ``(group, before, m)``, each ``(b,)``: the distance group containing rank ``top``, the
        number of items ranked before that group, and how many of its items make the top
        (``1 <= m <= group size``). Groups below ``group`` are inside the top entirely.
    """
    cum = np.cumsum(n_items, axis=1)
    group = (cum < top).sum(axis=1)
    rows = np.arange(n_items.shape[0])
    before = cum[rows, group] - n_items[rows, group]
    return group, before, top - before


def _hypergeometric(n: np.ndarray, r: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Law of the number ``x`` of relevant items among ``m`` drawn from ``n`` holding ``r``.

    Args: ``(b,)`` int arrays with ``0 <= r <= n`` and ``0 <= m <= n``.

    Returns:
        ``(x, prob)``, each ``(b, W)``: support values (repeated past each row's maximum,
        where ``prob`` is 0) and probabilities, computed from the ratio
        ``P(x+1)/P(x) = (r-x)(m-x) / ((x+1)(n-r-m+x+1))`` in log space (no overflow).
    """
    lo = np.maximum(0, m - (n - r))
    hi = np.minimum(m, r)
    width = int((hi - lo).max()) + 1
    x = lo[:, None] + np.arange(width)[None, :]
    valid = x <= hi[:, None]
    x = np.minimum(x, hi[:, None])
    xs, step_ok = x[:, :-1], valid[:, 1:]
    n_, r_, m_ = n[:, None], r[:, None], m[:, None]
    up = np.where(step_ok, (r_ - xs) * (m_ - xs), 1).astype(np.float64)
    down = np.where(step_ok, (xs + 1) * (n_ - r_ - m_ + xs + 1), 1).astype(np.float64)
    log_w = np.zeros(x.shape)
    np.cumsum(np.log(up) - np.log(down), axis=1, out=log_w[:, 1:])
    log_w[~valid] = -np.inf
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return x, w / w.sum(axis=1, keepdims=True)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (a query with nothing to score scores 0)."""
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=np.asarray(den) > 0)


# ---------------------------------------------------------------------------------------------
# Per-block, per-query metric kernels
# ---------------------------------------------------------------------------------------------


def _ap_stable(positions: list[np.ndarray], top: int | None) -> np.ndarray:
    """Per-query AP (or AP@top) from the stable positions of relevant items. ``(b,)``.

    With relevant items at 0-based positions ``pos_1 < pos_2 < ...``, the j-th one is at
    precision ``j / (pos_j + 1)``.
    """
    ap = np.zeros(len(positions))
    for i, pos in enumerate(positions):
        if top is not None:
            pos = pos[: np.searchsorted(pos, top)]
        if pos.size:
            ap[i] = np.dot(np.arange(1.0, pos.size + 1.0), 1.0 / (pos + 1.0)) / pos.size
    return ap


def _ap_expected(
    n_items: np.ndarray, n_rel: np.ndarray, h: np.ndarray, top: int | None
) -> np.ndarray:
    """Per-query expected AP (or expected AP@top) under random order inside tie groups."""
    before, rel_before = _exclusive_cumsum(n_items), _exclusive_cumsum(n_rel)
    s = _expected_group_sum(before, rel_before, n_items, n_rel, h)  # (b, k + 1)
    if top is None:
        return _safe_ratio(s.sum(axis=1), n_rel.sum(axis=1))
    # AP@top = (sum of precisions at relevant items in the top) / (relevant items in the top).
    # Groups before the boundary group are fully inside; inside the boundary group, X relevant
    # items land in its first m places (hypergeometric) and, given X = x, they sit at random
    # among those m places. Earlier groups' order is independent of X, so
    # E[AP@top] = sum_x P(x) (A + S(N, R, m, x)) / (R + x), with A their expected sum.
    group, n_before, m = _cut(n_items, top)
    rows = np.arange(n_items.shape[0])
    a_sum = _exclusive_cumsum(s)[rows, group]
    r_before = rel_before[rows, group]
    x, prob = _hypergeometric(n_items[rows, group], n_rel[rows, group], m)
    inside = _expected_group_sum(n_before[:, None], r_before[:, None], m[:, None], x, h)
    found = r_before[:, None] + x
    return (prob * _safe_ratio(a_sum[:, None] + inside, found)).sum(axis=1)


def _relevant_in_top_expected(n_items: np.ndarray, n_rel: np.ndarray, top: int) -> np.ndarray:
    """Expected number of relevant items in the top ``top`` under random tie order. ``(b,)``."""
    group, _, m = _cut(n_items, top)
    rows = np.arange(n_items.shape[0])
    r_before = _exclusive_cumsum(n_rel)[rows, group]
    return r_before + m * n_rel[rows, group] / n_items[rows, group]


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def mean_average_precision(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    top_k: int | None = None,
    ties: str = "stable",
    *,
    n_bits: int | None = None,
) -> float:
    """Mean average precision (mAP) of Hamming ranking.

    For one query, with the database ranked by Hamming distance and ``rel(i)``, ``P@i`` the
    relevance and precision at rank ``i``:

    * ``top_k=None`` (mAP@all): ``AP = sum_i P@i rel(i) / (number of relevant items)``.
    * ``top_k=K`` (mAP@K): ``AP@K = sum_{i<=K} P@i rel(i) / (number of relevant items in the
      top K)`` -- the convention of DSH / DeepHash-style evaluation code (not divided by the
      total number of relevant items, nor by ``min(K, #relevant)``). ``K >= nd`` is mAP@all.

    A query with no relevant item (in the database, or in the top K) scores 0 and still counts
    in the mean.

    Ties (items at equal distance):

    * ``"stable"``: they keep database order, exactly what ``np.argsort(d, kind="stable")``
      based code gives.
    * ``"expected"``: the tie-aware AP of He et al. (CVPR 2018): the exact expectation of AP
      when the order inside every group of equal distance is uniformly random (closed form,
      see the module docstring; not sampled). With ``top_k``, it is the exact expectation of
      AP@K (a ratio; not the ratio of expectations): the group straddling rank K contributes
      through the hypergeometric law of how many of its relevant items make the top K.

    Args:
        query_codes: ``(nq, k)`` in ``{-1, +1}`` or ``{0, 1}``, numpy or torch (or packed
            uint8 ``(nq, ceil(k/8))`` with ``n_bits``).
        db_codes: ``(nd, k)``, same forms.
        query_labels: ``(nq,)`` class ids or ``(nq, c)`` multi-hot.
        db_labels: ``(nd,)`` or ``(nd, c)``; relevant = same class / at least one shared label.
        top_k: ``None`` for mAP@all, else ``K >= 1``.
        ties: ``"stable"`` or ``"expected"``.
        n_bits: number of bits when the codes are packed.

    Returns:
        mAP as a Python float in ``[0, 1]``.
    """
    ties = _check_ties(ties)
    top = None if top_k is None else positive_int(top_k, "top_k")
    p = _problem(query_codes, db_codes, query_labels, db_labels, n_bits)
    top = None if top is None or top >= p.nd else top
    ap = np.empty(p.nq)
    h = _harmonic(p.nd) if ties == "expected" else None
    for rows, dist, rel in _blocks(p):
        if ties == "stable":
            ap[rows] = _ap_stable(_relevant_positions(dist, rel), top)
        else:
            ap[rows] = _ap_expected(*_distance_counts(dist, rel, p.k), h, top)
    return float(ap.mean())


def precision_within_radius(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    radius: int = 2,
    return_empty_fraction: bool = False,
    *,
    n_bits: int | None = None,
) -> float | tuple[float, float]:
    """Mean precision of Hamming-ball retrieval (P@H<=radius, e.g. "precision within radius 2").

    For each query, all items at distance ``<= radius`` are retrieved (ties play no role) and
    precision = relevant retrieved / retrieved. A query that retrieves nothing scores 0 (and
    counts in the mean): with long codes most balls are empty and the number collapses, the
    "empty retrieval trap" -- so look at the empty fraction too.

    Args:
        query_codes, db_codes, query_labels, db_labels, n_bits: as in
            :func:`mean_average_precision`.
        radius: integer ``>= 0``.
        return_empty_fraction: also return the fraction of queries that retrieved nothing.

    Returns:
        ``precision`` (float), or ``(precision, empty_fraction)`` when
        ``return_empty_fraction=True``.
    """
    radius = int_at_least(radius, "radius", 0)
    p = _problem(query_codes, db_codes, query_labels, db_labels, n_bits)
    precision = np.empty(p.nq)
    empty = np.empty(p.nq, dtype=bool)
    for rows, dist, rel in _blocks(p):
        n_items, n_rel = _distance_counts(dist, rel, p.k)
        retrieved = n_items[:, : radius + 1].sum(axis=1)
        precision[rows] = _safe_ratio(n_rel[:, : radius + 1].sum(axis=1), retrieved)
        empty[rows] = retrieved == 0
    if return_empty_fraction:
        return float(precision.mean()), float(empty.mean())
    return float(precision.mean())


def precision_recall_curve(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    *,
    n_bits: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming-ball precision-recall curve, radius ``0..k``, micro-averaged over queries.

    At radius ``r`` every query retrieves the items at distance ``<= r``; counts are summed
    over all queries before dividing:

    * ``precision[r] = sum_q relevant retrieved_q / sum_q retrieved_q``
    * ``recall[r] = sum_q relevant retrieved_q / sum_q relevant_q`` (all relevant items)

    Where nothing at all is retrieved at radius ``r`` (no query has an item that close),
    precision is undefined and set to ``nan`` (matplotlib leaves the point out); recall is
    ``nan`` only if no query has any relevant item. ``recall[k] = 1``.

    Args:
        as in :func:`mean_average_precision`.

    Returns:
        ``(precision, recall)``, each ``(k + 1,)`` float64, index = radius.
    """
    p = _problem(query_codes, db_codes, query_labels, db_labels, n_bits)
    retrieved = np.zeros(p.k + 1, dtype=np.int64)
    hits = np.zeros(p.k + 1, dtype=np.int64)
    for _, dist, rel in _blocks(p):
        n_items, n_rel = _distance_counts(dist, rel, p.k)
        retrieved += n_items.sum(axis=0)
        hits += n_rel.sum(axis=0)
    retrieved, hits = np.cumsum(retrieved), np.cumsum(hits)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(retrieved > 0, hits / np.maximum(retrieved, 1), np.nan)
        recall = hits / hits[-1] if hits[-1] > 0 else np.full(p.k + 1, np.nan)
    return precision, recall


def precision_at_n_curve(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    ns: Sequence[int] | np.ndarray,
    ties: str = "stable",
    *,
    n_bits: int | None = None,
) -> np.ndarray:
    """Mean precision among the top ``n`` ranked items, for each ``n`` in ``ns``.

    ``P@n = (relevant items among the first n) / n``, averaged over queries. Ranking by
    Hamming distance with ``ties="stable"`` (equal distances in database order) or
    ``ties="expected"`` (exact expectation under random order inside tie groups).

    Args:
        ns: 1-D integers, each ``1 <= n <= nd``.
        others: as in :func:`mean_average_precision`.

    Returns:
        ``(len(ns),)`` float64, ``P@n`` in the order of ``ns``.
    """
    ties = _check_ties(ties)
    ns_list = _check_ns(ns)
    p = _problem(query_codes, db_codes, query_labels, db_labels, n_bits)
    _check_ns_fit(ns_list, p.nd)
    found = np.zeros(len(ns_list))  # relevant items in the top n, summed over queries
    for _, dist, rel in _blocks(p):
        if ties == "stable":
            for pos in _relevant_positions(dist, rel):
                found += np.searchsorted(pos, ns_list)
        else:
            n_items, n_rel = _distance_counts(dist, rel, p.k)
            found += [_relevant_in_top_expected(n_items, n_rel, n).sum() for n in ns_list]
    return found / (np.asarray(ns_list, dtype=np.float64) * p.nq)


def precision_at_n(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    n: int,
    ties: str = "stable",
    *,
    n_bits: int | None = None,
) -> float:
    """Mean precision among the top ``n`` ranked items (P@n, e.g. ``n = 500``).

    See :func:`precision_at_n_curve`; ``1 <= n <= nd``, ties stable (database order) by
    default.

    Returns:
        P@n as a Python float.
    """
    return float(
        precision_at_n_curve(
            query_codes, db_codes, query_labels, db_labels, [n], ties, n_bits=n_bits
        )[0]
    )


# ---------------------------------------------------------------------------------------------
# Every headline metric in one pass
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalScores:
    """What :func:`evaluate_retrieval` measures; every value is a mean over queries.

    Plain names rank equal distances in database order (``ties="stable"``); ``*_tie_aware``
    ones are the exact expectation under a random order inside tie groups
    (``ties="expected"``). ``p_at_n`` and ``p_at_n_tie_aware`` are ``(len(ns),)`` float64.
    """

    map: float
    map_tie_aware: float
    map_at_k: float
    map_at_k_tie_aware: float
    p_within_radius: float
    empty_fraction: float
    p_at_n: np.ndarray
    p_at_n_tie_aware: np.ndarray


def evaluate_retrieval(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    *,
    top_k: int = 1000,
    radius: int = 2,
    ns: Sequence[int] | np.ndarray = (500, 1500),
    n_bits: int | None = None,
) -> RetrievalScores:
    """mAP@all and mAP@``top_k``, P@H<=``radius`` and P@n for each ``n`` in ``ns``, stable and
    tie-aware, from one scan of the query x database distances.

    The values are those of the separate functions -- :func:`mean_average_precision` (with
    ``top_k=None`` and ``top_k``, ``ties="stable"`` and ``"expected"``),
    :func:`precision_within_radius` (``return_empty_fraction=True``) and
    :func:`precision_at_n_curve` (both ties) -- computed by the same kernels over the same
    query blocks, but each block's distances and relevance are computed once, and one stable
    ``argsort`` per query gives both the positions of its relevant items and its per-distance
    counts (:func:`_ranked_counts`), instead of one full scan per metric.

    Args:
        query_codes, db_codes, query_labels, db_labels, n_bits: as in
            :func:`mean_average_precision`.
        top_k: ``K >= 1`` of mAP@K (``K >= nd`` is mAP@all).
        radius: integer ``>= 0`` of P@H<=radius.
        ns: 1-D integers, each ``1 <= n <= nd``.

    Returns:
        A :class:`RetrievalScores`.
    """
    top = positive_int(top_k, "top_k")
    radius = int_at_least(radius, "radius", 0)
    ns_list = _check_ns(ns)
    p = _problem(query_codes, db_codes, query_labels, db_labels, n_bits)
    _check_ns_fit(ns_list, p.nd)
    top = None if top >= p.nd else top
    h = _harmonic(p.nd)
    ap, ap_ta, ap_k, ap_k_ta, precision = (np.empty(p.nq) for _ in range(5))
    empty = np.empty(p.nq, dtype=bool)
    found, found_ta = np.zeros(len(ns_list)), np.zeros(len(ns_list))  # summed over queries
    for rows, dist, rel in _blocks(p):
        positions, n_items, n_rel = _ranked_counts(dist, rel, p.k)
        ap[rows] = _ap_stable(positions, None)
        ap_k[rows] = ap[rows] if top is None else _ap_stable(positions, top)
        ap_ta[rows] = _ap_expected(n_items, n_rel, h, None)
        ap_k_ta[rows] = ap_ta[rows] if top is None else _ap_expected(n_items, n_rel, h, top)
        retrieved = n_items[:, : radius + 1].sum(axis=1)
        precision[rows] = _safe_ratio(n_rel[:, : radius + 1].sum(axis=1), retrieved)
        empty[rows] = retrieved == 0
        for pos in positions:
            found += np.searchsorted(pos, ns_list)
        found_ta += [_relevant_in_top_expected(n_items, n_rel, n).sum() for n in ns_list]
    scale = np.asarray(ns_list, dtype=np.float64) * p.nq
    return RetrievalScores(
        map=float(ap.mean()), map_tie_aware=float(ap_ta.mean()), map_at_k=float(ap_k.mean()),
        map_at_k_tie_aware=float(ap_k_ta.mean()), p_within_radius=float(precision.mean()),
        empty_fraction=float(empty.mean()), p_at_n=found / scale, p_at_n_tie_aware=found_ta / scale,
    )


def euclidean_precision_at_n(query_feats, db_feats, query_labels, db_labels,
                             ns: Sequence[int], chunk: int = 256) -> np.ndarray:
    """Mean precision of the ``n`` nearest database items by Euclidean distance on real-valued
    features, for each ``n`` in ``ns`` ("is it the signs or the features?", CNNBH's Table 3;
    torch, chunked over queries).

    Args:
        query_feats: ``(nq, d)`` float features.
        db_feats: ``(nd, d)`` float features.
        query_labels, db_labels: ``(nq,)`` / ``(nd,)`` class ids (relevant = same class).
        ns: list sizes, each in ``1..nd``.

    Returns:
        ``(len(ns),)`` float64 precisions, averaged over queries. Exact distance ties are
        broken by database order (``torch.topk`` on distance, then a stable sort).
    """
    import torch

    q = torch.as_tensor(as_numpy(query_feats), dtype=torch.float32)
    d = torch.as_tensor(as_numpy(db_feats), dtype=torch.float32)
    ql, dl = (torch.as_tensor(as_numpy(x)) for x in (query_labels, db_labels))
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(
            f"features must be (nq, d) and (nd, d); got {tuple(q.shape)}, {tuple(d.shape)}."
        )
    if len(q) != len(ql) or len(d) != len(dl):
        raise ValueError("each feature row needs one label.")
    _check_finite_labels(ql.numpy(), "query_labels")
    _check_finite_labels(dl.numpy(), "db_labels")
    ns = [int(n) for n in ns]
    if not ns or min(ns) <= 0 or max(ns) > len(d):
        raise ValueError(f"every n must be in 1..{len(d)}; got {ns}.")
    top = max(ns)
    hits = torch.zeros(len(ns), dtype=torch.float64)
    for s in range(0, len(q), chunk):
        dist = torch.cdist(q[s:s + chunk], d)
        order = torch.argsort(dist, dim=1, stable=True)[:, :top]
        rel = (dl[order] == ql[s:s + chunk, None]).double().cumsum(1)
        hits += torch.stack([rel[:, n - 1].sum() / n for n in ns])
    return (hits / len(q)).numpy()
