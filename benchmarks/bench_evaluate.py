"""Benchmark: every headline metric of a results file, one scan vs one scan per metric.

Run:  python benchmarks/bench_evaluate.py

"old" is what ``hashlib_edu.results.evaluate_codes`` did before the one-pass evaluator: six
metric calls (mAP stable and tie-aware, mAP@1000, P@H<=2 with its empty fraction, P@500,
P@1500), each scanning all query x database Hamming distances. "new" is today's
``evaluate_codes`` (``hashlib_edu.metrics.evaluate_retrieval``): one scan, every metric --
the same six and the tie-aware mAP@1000, P@500 and P@1500 besides. Data as in
``bench_metrics.py``: 48-bit codes with class structure, 1,000 queries x 59,000 database
codes (the cifar10-1k protocol), fixed seed. Times are the best of ``REPEAT`` runs; the
script also checks that both give the same numbers.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_metrics import BITS, CLASSES, SEED, make_codes  # noqa: E402

from hashlib_edu.metrics import (  # noqa: E402
    mean_average_precision,
    precision_at_n,
    precision_within_radius,
)
from hashlib_edu.results import evaluate_codes  # noqa: E402

NQ, ND, REPEAT = 1000, 59000, 3


def six_calls(q, d, ql, dl) -> dict[str, float]:
    """The old ``evaluate_codes``: one full scan per metric function."""
    args, nd = (q, d, ql, dl), len(d)
    p_h2, empty = precision_within_radius(*args, radius=2, return_empty_fraction=True)
    return {
        "map": mean_average_precision(*args),
        "map_tie_aware": mean_average_precision(*args, ties="expected"),
        "map_at_1000": mean_average_precision(*args, top_k=min(1000, nd)),
        "p_at_h2": p_h2,
        "p_at_h2_empty_fraction": empty,
        "p_at_500": precision_at_n(*args, n=min(500, nd)),
        "p_at_1500": precision_at_n(*args, n=min(1500, nd)),
    }


def best_time(fn, *args) -> tuple[float, dict[str, float]]:
    best, out = float("inf"), {}
    for _ in range(REPEAT):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    rng = np.random.default_rng(SEED)
    prototypes = rng.choice(np.array([-1, 1]), (CLASSES, BITS))
    q, ql = make_codes(rng, NQ, prototypes)
    d, dl = make_codes(rng, ND, prototypes)
    t_old, old = best_time(six_calls, q, d, ql, dl)
    t_new, new = best_time(evaluate_codes, q, d, ql, dl)
    diff = max(abs(old[k] - new[k]) for k in old)
    print(f"evaluate_codes, {NQ:,} x {ND:,} x {BITS} bits, {CLASSES} classes; numpy "
          f"{np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          f"at the end; best of {REPEAT}")
    print(f"  old (six metric calls, {len(old)} numbers): {t_old:6.3f} s")
    print(f"  new (one pass, {len(new)} numbers):        {t_new:6.3f} s")
    print(f"  speed-up old / new: {t_old / t_new:.1f}x; max |old - new| on shared keys: {diff:.1e}")


if __name__ == "__main__":
    main()
