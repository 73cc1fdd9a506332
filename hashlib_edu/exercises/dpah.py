"""Checkers for notebook 05 (DPAH: the inter-class bound, the relaxed Hamming distance)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..methods.dpah import dpah_inter_bound, dpah_inter_hinge, relaxed_hamming_distance
from .checking import (
    close,
    report,
    run_student,
)

__all__ = ["check_dpah_bound", "check_relaxed_hamming_distance"]

_DPAH_BOUND_TODO = "the DPAH inter-class bound (one value per sample, with logsumexp)"
_RELAXED_HAMMING_TODO = "the relaxed Hamming distance (K - b @ theta.T) / 2, shape (n, C)"


# --------------------------------------------------------------------------- DPAH


def _dpah_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(2020)
    cases = []
    for n, m, alpha, spread in [(6, 9, 0.5, 6.0), (5, 4, 0.0, 3.0), (8, 9, 1.0, 24.0)]:
        d_own = torch.rand(n, generator=g, dtype=torch.float64) * spread
        d_neg = torch.rand(n, m, generator=g, dtype=torch.float64) * spread
        cases.append((f"random distances (n={n}, {m} other classes, alpha={alpha})",
                      d_own, d_neg, alpha))
    d_own = torch.rand(4, generator=g) * 150.0 + 50.0
    d_neg = torch.rand(4, 9, generator=g) * 150.0 + 50.0
    cases.append(("large distances (float32, up to 200)", d_own, d_neg, 0.5))
    return cases


def check_dpah_bound(student_fn: Callable[..., Any]) -> bool:
    """Check a student's DPAH inter-class bound against :func:`hashlib_edu.methods.dpah.dpah_inter_bound`.

    The student's function is called as ``student_fn(d_own, d_neg, alpha)`` with
    ``d_own`` the ``(n,)`` distances to each sample's own anchor, ``d_neg`` the
    ``(n, M)`` distances to the anchors of the other classes and ``alpha`` a float,
    and must return the ``(n,)`` per-sample values

        -log( e^{-(1+alpha) d_own} / (e^{-(1+alpha) d_own} + sum_j e^{-d_neg_j}) ).

    The last case uses large float32 distances, where a direct ``exp`` overflows:
    ``torch.logsumexp`` (or ``F.softplus``) keeps it finite.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _dpah_cases()
    for case, d_own, d_neg, alpha in cases:
        expected = dpah_inter_bound(d_own.double(), d_neg.double(), alpha)
        value, error = run_student(student_fn, (d_own.clone(), d_neg.clone(), alpha), case,
                            _DPAH_BOUND_TODO)
        if error:
            return report(False, len(cases), "", error)
        if value.numel() == 1 and expected.numel() > 1:
            return report(False, len(cases), "", f"{case}: return one value per sample, shape "
                           f"({d_own.shape[0]},), not the mean (the loss averages them later).")
        if value.shape != expected.shape:
            return report(False, len(cases), "", f"{case}: expected shape "
                           f"{tuple(expected.shape)}, got {tuple(value.shape)}.")
        if close(value, expected):
            continue
        if not bool(torch.isfinite(value).all()):
            return report(False, len(cases), "", f"{case}: your values overflow to inf/nan. "
                           "Hint: exp(200) does not fit in float32; write the bound as "
                           "logsumexp([-(1+alpha) d_own, -d_neg]) + (1+alpha) d_own.")
        a = (1.0 + alpha) * d_own.double()
        mistakes = [
            (dpah_inter_hinge(d_own.double(), d_neg.double(), alpha),
             "that is the hinge max{(1+alpha) d_own - min_j d_j, 0}; the exercise asks for "
             "its smooth upper bound."),
            (dpah_inter_bound(d_own.double(), d_neg.double(), 0.0),
             "the factor (1 + alpha) on the own-anchor distance seems to be missing."),
            (torch.log(torch.exp(-d_neg.double()).sum(1) + torch.exp(a) + 1.0),
             "that is the garbled line of the appendix; the correct step is "
             "max{x, 0} <= log(1 + e^x) with x = (1+alpha) d_own + log sum_j e^{-d_j}, "
             "a product e^{(1+alpha) d_own} * sum_j e^{-d_j}, not a sum."),
            (torch.logsumexp(torch.cat([a[:, None], d_neg.double()], 1), 1) - a,
             "signs: the logits are the *negative* distances, -(1+alpha) d_own and -d_j."),
        ]
        hint = next((h for v, h in mistakes if close(value, v)),
                    "rebuild it from the two inequalities max_j z_j <= log sum_j e^{z_j} and "
                    "max{x, 0} <= log(1 + e^x).")
        worst = int((value - expected).abs().argmax())
        return report(False, len(cases), "", f"{case}: sample {worst} should be "
                       f"{float(expected[worst]):.6f}, got {float(value[worst]):.6f}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.methods.dpah.dpah_inter_bound", "")

# --------------------------------------------------------------------------- DPAH: distances


def _relaxed_hamming_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2021)
    cases = []
    # n, K and C all differ, so a transposed result or K taken from the wrong axis shows
    for n, k, n_cls in [(5, 8, 3), (7, 16, 4), (6, 32, 10)]:
        b = torch.tanh(torch.randn(n, k, generator=g, dtype=torch.float64) * 1.5)
        theta = torch.rand(n_cls, k, generator=g, dtype=torch.float64) * 2.0 - 1.0
        cases.append((f"random codes in [-1, 1] (n={n}, K={k}, C={n_cls})", b, theta))
    b = torch.randint(0, 2, (4, 12), generator=g).double() * 2.0 - 1.0
    theta = torch.randint(0, 2, (10, 12), generator=g).double() * 2.0 - 1.0
    cases.append(("+-1 codes and positions (n=4, K=12, C=10: the exact Hamming distance)",
                  b, theta))
    return cases


def check_relaxed_hamming_distance(student_fn: Callable[..., Any]) -> bool:
    r"""Check a student's relaxed Hamming distance (DPAH, notebook 05).

    The reference is :func:`hashlib_edu.methods.dpah.relaxed_hamming_distance`.

    The student's function is called as ``student_fn(b, theta)`` with ``b`` the ``(n, K)``
    float64 codes in ``[-1, 1]`` and ``theta`` the ``(C, K)`` class positions in
    ``[-1, 1]``, and must return the ``(n, C)`` distances

        d(b_i, theta_c) = (K - b_i . theta_c) / 2,

    the Hamming distance for ``+-1`` vectors (the last case). Four cases; tolerance
    ``rtol=1e-4``.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _relaxed_hamming_cases()
    for case, b, theta in cases:
        expected = relaxed_hamming_distance(b, theta)
        value, error = run_student(student_fn, (b.clone(), theta.clone()), case, _RELAXED_HAMMING_TODO)
        if error:
            return report(False, len(cases), "", error)
        (n, k), n_cls = b.shape, theta.shape[0]
        if value.shape != expected.shape:
            hint = (" Hint: that is the (C, n) transpose; put the codes on the rows: "
                    "b @ theta.T, not theta @ b.T." if value.shape == (n_cls, n) else "")
            return report(False, len(cases), "", f"{case}: expected shape (n, C) = "
                           f"{tuple(expected.shape)}, got {tuple(value.shape)}.{hint}")
        if close(value, expected):
            continue
        dot = b @ theta.T
        mistakes = [
            (2.0 * expected, "your values are twice the distance: divide K - b . theta by 2 "
             "(each differing bit changes b . theta by 2)."),
            ((k + dot) / 2.0, "the sign of b . theta is flipped: (K + b . theta) / 2 is the "
             "distance to the negated position -theta; use (K - b . theta) / 2."),
            (dot, "that is the inner product b . theta, a similarity (large when close); the "
             "distance is (K - b . theta) / 2."),
            ((n - dot) / 2.0, "K is the code length b.shape[1], not the number of codes "
             "b.shape[0]."),
        ]
        hint = next((h for v, h in mistakes if close(value, v)),
                    "for +-1 vectors, b . theta = K - 2 * (number of differing bits).")
        i, c = divmod(int((value - expected).abs().argmax()), n_cls)
        return report(False, len(cases), "", f"{case}: d(b_{i}, theta_{c}) should be "
                       f"{float(expected[i, c]):.6f}, got {float(value[i, c]):.6f}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.methods.dpah.relaxed_hamming_distance", "")
