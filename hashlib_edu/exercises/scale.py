"""Checkers for notebook 08 (hashing at scale: multi-index keys, probe counts, recall)."""

from __future__ import annotations

from collections.abc import Callable
from math import comb
from typing import Any

import numpy as np

from ..index import buckets_within, multi_index_probes, recall_at_k, substring_keys, substring_sizes
from .checking import call_student, report

__all__ = ["check_substring_keys", "check_probe_count", "check_recall_at_k"]

_KEYS_TODO = "substring_keys(bits, tables) -> (n, tables) integer keys, one per substring"
_PROBES_TODO = "probe_count(n_bits, tables, radius) -> the number of bucket lookups per query"
_RECALL_TODO = ("recall_at_k(found_idx, found_dist, exact_idx, exact_dist) -> one number, the "
                "mean over the queries")


def _as_array(value: Any) -> np.ndarray | None:
    try:
        return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- substring keys


def _key_cases() -> list[tuple[str, np.ndarray, int]]:
    rng = np.random.default_rng(2012)
    cases = [("the 8-bit example 10110001 in 2 tables",
              np.array([[1, 0, 1, 1, 0, 0, 0, 1]], np.uint8), 2)]
    for n, k, m in [(5, 12, 3), (7, 48, 3), (6, 64, 4), (5, 10, 3)]:
        cases.append((f"{n} random {k}-bit codes in {m} tables", rng.integers(0, 2, (n, k))
                      .astype(np.uint8), m))
    return cases


def _key_mistakes(bits: np.ndarray, tables: int) -> list[tuple[np.ndarray, str]]:
    n, k = bits.shape
    sizes = substring_sizes(k, tables)
    starts = np.cumsum([0, *sizes])
    parts = [bits[:, a:b].astype(np.uint64) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    little = np.stack([(p << np.arange(p.shape[1], dtype=np.uint64)).sum(1) for p in parts], 1)
    equal = k // tables
    dropped = substring_keys(bits[:, :equal * tables], tables) if equal else None
    interleaved = substring_keys(np.concatenate([bits[:, j::tables] for j in range(tables)], 1),
                                 tables) if k % tables == 0 else None
    mistakes = [
        (little, "the bits look read in reverse: the first bit of a substring is the most "
                 "significant (weight 2^(s-1)), the last one has weight 1."),
        (np.stack([p.sum(1) for p in parts], 1),
         "those are the numbers of ones in each substring; the key is the substring read as a "
         "binary number, so that different substrings get different keys."),
        (substring_keys(bits, tables).T, "transposed: return one row per code, one column per "
                                         "table: shape (n, tables)."),
    ]
    if dropped is not None and k % tables:
        mistakes.append((dropped, f"with {k} bits in {tables} tables the sizes are {sizes}: the "
                                  "first k % m substrings take one bit more "
                                  "(hashlib_edu.index.substring_sizes); no bit is left out."))
    if interleaved is not None:
        mistakes.append((interleaved, "the substrings are contiguous runs of bits (bits 0..s-1, "
                                      "then s..2s-1, ...), not every m-th bit."))
    return mistakes


def check_substring_keys(student_fn: Callable[..., Any]) -> bool:
    """Check a student's ``substring_keys(bits, tables)`` against
    :func:`hashlib_edu.index.substring_keys`.

    ``bits`` is an ``(n, k)`` uint8 array of 0/1; the function returns ``(n, tables)`` integer
    keys: substring ``j`` (contiguous, sizes from :func:`hashlib_edu.index.substring_sizes`)
    read as a binary number, its first bit the most significant. Five cases.
    """
    cases = _key_cases()
    for case, bits, tables in cases:
        out, error = call_student(student_fn, (bits.copy(), tables), case, _KEYS_TODO)
        if error:
            return report(False, len(cases), "", error)
        got, expected = _as_array(out), substring_keys(bits, tables)
        if got is not None and got.shape == expected.shape and np.array_equal(
                got.astype(np.uint64), expected):
            continue
        hint = next((h for m, h in _key_mistakes(bits, tables)
                     if got is not None and got.shape == m.shape
                     and np.array_equal(got.astype(np.uint64), m.astype(np.uint64))),
                    "compare one code by hand: cut it into the substrings, read each in binary.")
        if got is None or got.shape != expected.shape:
            shown = "nothing usable" if got is None else f"shape {got.shape}"
        else:
            shown = f"{got.tolist()[0]} for the first code instead of {expected.tolist()[0]}"
        return report(False, len(cases), "", f"{case}: expected keys of shape "
                                             f"{expected.shape}, got {shown}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.index.substring_keys", "")


# --------------------------------------------------------------------------- probe count


_PROBE_CASES = [(64, 4, 9), (64, 4, 0), (64, 4, 3), (64, 4, 4), (48, 3, 2), (48, 3, 7),
                (32, 2, 5), (128, 8, 17), (70, 4, 6)]


def _probe_mistakes(n_bits: int, tables: int, radius: int) -> list[tuple[int, str]]:
    sizes = substring_sizes(n_bits, tables)
    per = radius // tables
    return [
        (sum(buckets_within(s, radius) for s in sizes),
         "each table is probed at radius floor(r / m), not r: by the pigeonhole principle, "
         "r differing bits cannot put more than floor(r / m) in every one of m substrings."),
        (buckets_within(sizes[0], per),
         "that is one table; a query probes every one of the m tables."),
        (sum(buckets_within(s, -(-radius // tables)) for s in sizes),
         "round r / m down (floor), not up: floor(r / m) already guarantees a match."),
        (sum(comb(s, per) for s in sizes),
         "count the keys at distance at most floor(r / m), i = 0, 1, ..., not only those at "
         "exactly floor(r / m)."),
        (buckets_within(n_bits, radius),
         "that is the number of keys within r of the whole code; multi-index hashing probes "
         "each substring's table."),
    ]


def check_probe_count(student_fn: Callable[..., Any]) -> bool:
    """Check a student's ``probe_count(n_bits, tables, radius)`` against
    :func:`hashlib_edu.index.multi_index_probes`: the number of buckets one query looks up,
    ``sum over the m tables of sum_{i <= floor(r / m)} C(s_j, i)`` with ``s_j`` the tables'
    substring lengths. Nine cases."""
    for n_bits, tables, radius in _PROBE_CASES:
        case = f"{n_bits} bits, {tables} tables, radius {radius}"
        out, error = call_student(student_fn, (n_bits, tables, radius), case, _PROBES_TODO)
        if error:
            return report(False, len(_PROBE_CASES), "", error)
        expected = multi_index_probes(n_bits, tables, radius)
        try:
            got = int(out)
        except (TypeError, ValueError):
            return report(False, len(_PROBE_CASES), "", f"{case}: return one integer, not "
                                                         f"{type(out).__name__}.")
        if got == expected:
            continue
        hint = next((h for v, h in _probe_mistakes(n_bits, tables, radius) if got == v),
                    "write the sum for one table first, then add the tables.")
        return report(False, len(_PROBE_CASES), "", f"{case}: expected {expected}, got {got}. "
                                                    f"Hint: {hint}")
    return report(True, len(_PROBE_CASES), "hashlib_edu.index.multi_index_probes", "")


# --------------------------------------------------------------------------- recall@k


def _recall_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(case, found_idx, found_dist, exact_idx, exact_dist); ties and misses on purpose."""
    exact_idx = np.array([[3, 8, 9, 11], [0, 1, 2, 5], [7, 4, 6, 12]])
    exact_dist = np.array([[0, 1, 1, 1], [2, 2, 2, 2], [0, 0, 3, 3]])
    cases = [("three queries with ties",
              np.array([[3, 8, 10, 12], [6, 1, 2, 9], [7, 4, 15, -1]]),
              np.array([[0, 1, 1, 2], [2, 2, 2, 2], [0, 0, 3, 49]]), exact_idx, exact_dist)]
    rng = np.random.default_rng(7)
    for nq, k in [(6, 10), (4, 5)]:
        e_dist = np.sort(rng.integers(0, 6, (nq, k)), axis=1)
        e_idx = rng.permutation(1000)[:nq * k].reshape(nq, k)
        noise = rng.integers(0, 3, (nq, k)) * (rng.random((nq, k)) < 0.5)
        f_dist = np.sort(e_dist + noise, axis=1)
        f_idx = np.where(noise == 0, rng.permutation(1000)[:nq * k].reshape(nq, k), e_idx)
        f_idx[0, -1], f_dist[0, -1] = -1, 49
        cases.append((f"{nq} random queries, k={k}", f_idx, f_dist, e_idx, e_dist))
    return cases


def _recall_mistakes(f_idx, f_dist, e_idx, e_dist) -> list[tuple[float, str]]:
    k = e_idx.shape[1]
    by_id = np.mean([np.intersect1d(a[a >= 0], b).size / k for a, b in zip(f_idx, e_idx,
                                                                           strict=True)])
    strict = float(((f_dist < e_dist[:, -1:]) & (f_idx >= 0)).sum(1).mean() / k)
    per_found = np.mean([((d <= e[-1]) & (i >= 0)).sum() / max((i >= 0).sum(), 1)
                         for i, d, e in zip(f_idx, f_dist, e_dist, strict=True)])
    dist_set = np.mean([np.intersect1d(d, e).size / k for d, e in zip(f_dist, e_dist,
                                                                      strict=True)])
    return [
        (by_id, "that compares indices; with ties at the k-th distance many top-k lists are "
                "correct: count a returned item when its distance is at most the exact k-th "
                "distance."),
        (strict, "use <= the exact k-th distance: an item tied with the k-th one is as good."),
        (per_found, "divide by k, not by the number of items returned: a missing result (index "
                    "-1) is a miss."),
        (dist_set, "compare each returned item's distance with the exact k-th distance, not "
                   "the sets of distance values."),
    ]


def check_recall_at_k(student_fn: Callable[..., Any]) -> bool:
    """Check a student's tie-aware ``recall_at_k(found_idx, found_dist, exact_idx, exact_dist)``
    against :func:`hashlib_edu.index.recall_at_k`: all ``(nq, k)`` arrays from ``search``
    (a missing result has index ``-1`` and a distance larger than any code's); the mean over
    queries of the fraction of the ``k`` returned items whose distance is at most the exact
    ``k``-th distance. Three cases."""
    cases = _recall_cases()
    for case, f_idx, f_dist, e_idx, e_dist in cases:
        args = (f_idx.copy(), f_dist.copy(), e_idx.copy(), e_dist.copy())
        out, error = call_student(student_fn, args, case, _RECALL_TODO)
        if error:
            return report(False, len(cases), "", error)
        try:
            got = float(out)
        except (TypeError, ValueError):
            return report(False, len(cases), "", f"{case}: return one number (the mean over "
                                                  f"queries), not {type(out).__name__}.")
        expected = recall_at_k(f_dist, e_dist)
        if abs(got - expected) <= 1e-9:
            continue
        hint = next((h for v, h in _recall_mistakes(f_idx, f_dist, e_idx, e_dist)
                     if abs(got - v) <= 1e-9), "work out the first query by hand.")
        return report(False, len(cases), "", f"{case}: expected {expected:.4f}, got {got:.4f}."
                                             f" Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.index.recall_at_k", "")
