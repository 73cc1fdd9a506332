"""Benchmark: mAP@all of Hamming ranking, hashlib_edu.metrics vs a plain per-query argsort.

Run:  python benchmarks/bench_metrics.py

Data: 48-bit codes with class structure (10 classes; every code is its class prototype with each
bit flipped with probability 0.25), class-id labels, fixed seed. Two sizes: 1,000 queries x
59,000 database codes (the cifar10-1k protocol) and 10,000 x 50,000.

"argsort" is the classic DeepHash-style loop (per query: distances by inner product, a stable
argsort, cumulative precision); on 10k x 50k it is timed on the first 1,000 queries and
extrapolated (x10), as the table says. Times are single runs (best of 3 for the small case);
peak memory is measured by tracemalloc in a separate run of each of our calls.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hashlib_edu.metrics import mean_average_precision  # noqa: E402

BITS, CLASSES, FLIP, SEED = 48, 10, 0.25, 0
BASELINE_QUERIES = 1000  # the argsort loop runs on at most this many queries


def make_codes(rng: np.random.Generator, n: int, prototypes: np.ndarray):
    """``(n, BITS)`` int8 codes in {-1, +1} near their class prototype, and ``(n,)`` labels."""
    labels = rng.integers(0, CLASSES, n)
    flips = np.where(rng.random((n, BITS)) < FLIP, -1, 1)
    return (prototypes[labels] * flips).astype(np.int8), labels


def argsort_map(query_codes, db_codes, query_labels, db_labels) -> float:
    """Plain reference: one query at a time, sort everything (stable), cumulative precision."""
    db = db_codes.astype(np.float32)
    k = db.shape[1]
    aps = []
    for q, label in zip(query_codes.astype(np.float32), query_labels, strict=True):
        dist = 0.5 * (k - db @ q)
        order = np.argsort(dist, kind="stable")
        relevant = (db_labels[order] == label).astype(np.float64)
        n_relevant = relevant.sum()
        if n_relevant == 0:
            aps.append(0.0)
            continue
        precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
        aps.append(float((precision * relevant).sum() / n_relevant))
    return float(np.mean(aps))


def timed(fn: Callable[[], float], repeat: int = 1) -> tuple[float, float]:
    best, value = float("inf"), float("nan")
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def peak_mib(fn: Callable[[], float]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def bench_case(
    rng: np.random.Generator, prototypes: np.ndarray, nq: int, nd: int, repeat: int
) -> dict:
    q, ql = make_codes(rng, nq, prototypes)
    d, dl = make_codes(rng, nd, prototypes)
    stable = partial(mean_average_precision, q, d, ql, dl)
    expected = partial(mean_average_precision, q, d, ql, dl, ties="expected")
    t_stable, map_stable = timed(stable, repeat)
    t_expected, map_expected = timed(expected, repeat)
    sub = slice(0, min(nq, BASELINE_QUERIES))
    t_base, map_base = timed(partial(argsort_map, q[sub], d, ql[sub], dl), repeat)
    return dict(
        size=f"{nq // 1000}k x {nd // 1000}k",
        t_stable=t_stable,
        t_expected=t_expected,
        t_base=t_base * nq / sub.stop,
        extrapolated=sub.stop < nq,
        map_stable=map_stable,
        map_expected=map_expected,
        diff=abs(mean_average_precision(q[sub], d, ql[sub], dl) - map_base),
        peak_stable=peak_mib(stable),
        peak_expected=peak_mib(expected),
    )


def main() -> None:
    rng = np.random.default_rng(SEED)
    prototypes = rng.choice(np.array([-1, 1]), (CLASSES, BITS))
    rows = [
        bench_case(rng, prototypes, 1000, 59000, 3),
        bench_case(rng, prototypes, 10000, 50000, 1),
    ]

    print(
        f"mAP@all, {BITS}-bit codes, {CLASSES} classes; numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    header = (
        f"{'queries x db':>13} | {'ours stable':>11} | {'ours tie-aware':>14} | "
        f"{'argsort':>9} | {'speed-up':>8} | {'mAP stable':>10} | {'mAP tie-aware':>13} | "
        f"{'|ours-argsort|':>14} | {'peak MiB (st/ta)':>16}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        base = f"{r['t_base']:.2f} s" + ("*" if r["extrapolated"] else " ")
        print(
            f"{r['size']:>13} | {r['t_stable']:9.3f} s | {r['t_expected']:12.3f} s | "
            f"{base:>9} | {r['t_base'] / r['t_stable']:7.1f}x | {r['map_stable']:10.4f} | "
            f"{r['map_expected']:13.4f} | {r['diff']:14.1e} | "
            f"{r['peak_stable']:7.0f} /{r['peak_expected']:6.0f}"
        )
    print(
        "* argsort timed on the first 1,000 queries and extrapolated x10; |ours-argsort| "
        "compares both on those queries. Speed-up = argsort / ours stable."
    )
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"process max RSS (whole run, data included): {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
