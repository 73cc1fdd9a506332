"""Checkers for notebook 04 (DSH: the loss, the regularizer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..losses import dsh_regularizer, pairwise_squared_distances, similarity_matrix
from ..methods.dsh import dsh_loss
from .checking import (
    close,
    report,
    run_student,
)

__all__ = ["check_dsh_loss", "check_dsh_regularizer"]

_DSH_TODO = "the DSH loss (one number: the mean over the pairs i < j)"
_DSH_REGULARIZER_TODO = "the DSH regularizer || |b_i| - 1 ||_1, one value per item, shape (n,)"


# --------------------------------------------------------------------------- DSH


def _dsh_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, float, float]]:
    g = torch.Generator().manual_seed(2016)
    # the notebook's 3-item example: a similar pair, a dissimilar pair inside the margin,
    # and a dissimilar pair beyond it
    cases = [("the 3-item example", torch.tensor([[1.0, 1.0], [0.5, 1.0], [-1.0, 1.0]],
                                                 dtype=torch.float64),
              torch.tensor([0, 0, 1]), 0.1, 3.0)]
    for n, k, n_cls, alpha, margin in [(8, 12, 3, 0.01, 24.0), (16, 6, 4, 0.1, 3.0),
                                       (10, 4, 2, 0.0, 8.0), (2, 5, 2, 0.05, 10.0)]:
        x = torch.randn(n, k, generator=g, dtype=torch.float64) * 1.2
        y = torch.randint(0, n_cls, (n,), generator=g)
        cases.append((f"random case n={n}, k={k}, alpha={alpha}, margin={margin}", x, y,
                      alpha, margin))
    return cases


def _dsh_mistakes(x: torch.Tensor, y: torch.Tensor, alpha: float, margin: float):
    """Values a few typical mistakes would give, with the hint for each."""
    n = x.shape[0]
    d2 = pairwise_squared_distances(x)
    sim = similarity_matrix(y)
    upper = torch.ones(n, n, dtype=torch.bool).triu(1)
    r_mean = dsh_regularizer(x).mean()

    def pairs(per_pair: torch.Tensor, mask: torch.Tensor = upper) -> torch.Tensor:
        return per_pair[mask].mean()

    good = torch.where(sim, 0.5 * d2, 0.5 * F.relu(margin - d2))
    contrastive = pairs(good)
    return [
        (contrastive + alpha * r_mean,
         "the alpha term looks averaged per item; as written it is per pair, and each item "
         "is in n-1 pairs, so its mean over pairs is 2*alpha*mean_i || |b_i| - 1 ||_1."),
        (good.mean() + 2 * alpha * r_mean,
         "it looks like a mean over all n*n ordered pairs (with i = j); use the unordered "
         "pairs i < j only (e.g. torch.triu(..., diagonal=1))."),
        (good[upper].sum() + alpha * (n - 1) * dsh_regularizer(x).sum(),
         "it looks like a sum over pairs; the loss is the mean over the n(n-1)/2 pairs."),
        (pairs(torch.where(sim, 0.5 * d2, 0.5 * F.relu(margin - d2.sqrt()))) + 2 * alpha * r_mean,
         "the margin is compared with the *squared* distance ||b1 - b2||^2, not the distance."),
        (pairs(torch.where(~sim, 0.5 * d2, 0.5 * F.relu(margin - d2))) + 2 * alpha * r_mean,
         "similar and dissimilar look swapped: y = 0 means similar (same label) and those "
         "pairs are pulled together."),
        (contrastive,
         "the alpha regularizer || |b| - 1 ||_1 seems to be missing."),
    ]


def check_dsh_loss(student_fn: Callable[..., Any]) -> bool:
    """Check a student's DSH loss against :func:`hashlib_edu.methods.dsh.dsh_loss`.

    The student's function is called as ``student_fn(outputs, labels, alpha, margin)``
    with ``outputs`` a ``(n, k)`` float64 tensor, ``labels`` ``(n,)`` int64 class ids,
    ``alpha`` and ``margin`` floats, and must return the loss as a scalar (mean over
    the unordered pairs ``i < j``, regularizer ``alpha (|| |b_i|-1 ||_1 + || |b_j|-1 ||_1)``
    per pair). Five cases; tolerance ``rtol=1e-4``.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _dsh_cases()
    for case, x, y, alpha, margin in cases:
        expected = dsh_loss(x, y, alpha=alpha, margin=margin)
        value, error = run_student(student_fn, (x.clone(), y.clone(), alpha, margin), case, _DSH_TODO)
        if error:
            return report(False, len(cases), "", error)
        if value.numel() != 1:
            return report(False, len(cases), "", f"{case}: return one number (the mean over "
                           f"pairs), not a tensor of shape {tuple(value.shape)}.")
        value = value.reshape(())
        if close(value, expected):
            continue
        hint = next((h for v, h in _dsh_mistakes(x, y, alpha, margin)
                     if close(value, v.reshape(()))), "compare term by term with the equation.")
        return report(False, len(cases), "", f"{case}: expected {float(expected):.6f}, got "
                       f"{float(value):.6f}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.methods.dsh.dsh_loss", "")

# --------------------------------------------------------------------------- DSH regularizer (04)


def _dsh_regularizer_cases() -> list[tuple[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(2017)
    cases = []
    # values on both sides of 0 and of +-1 (so |b - 1| and | |b| - 1 | differ), n != k
    for n, k in [(6, 8), (10, 12), (4, 48)]:
        x = torch.randn(n, k, generator=g, dtype=torch.float64) * 1.2
        cases.append((f"random outputs (n={n}, k={k})", x))
    x = torch.randint(0, 2, (5, 16), generator=g).double() * 2.0 - 1.0
    cases.append(("exact +-1 codes (n=5, k=16: the regularizer is 0)", x))
    return cases


def check_dsh_regularizer(student_fn: Callable[..., Any]) -> bool:
    r"""Check a student's DSH regularizer (notebook 04) against :func:`hashlib_edu.losses.dsh_regularizer`.

    The student's function is called as ``student_fn(outputs)`` with ``outputs`` an ``(n, k)``
    float64 tensor, and must return the ``(n,)`` per-item values

        r_i = || |b_i| - 1 ||_1 = sum_k | |b_ik| - 1 |,

    zero exactly when every output is ``+1`` or ``-1`` (the last case). Four cases;
    tolerance ``rtol=1e-4``.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _dsh_regularizer_cases()
    for case, x in cases:
        expected = dsh_regularizer(x)
        value, error = run_student(student_fn, (x.clone(),), case, _DSH_REGULARIZER_TODO)
        if error:
            return report(False, len(cases), "", error)
        n, k = x.shape
        if value.shape != expected.shape:
            if value.numel() == 1 and close(value.reshape(()), expected.mean()):
                hint = " Hint: that is the batch mean; return one value per item (the loss " \
                       "averages them later)."
            elif value.numel() == 1 and close(value.reshape(()), expected.sum()):
                hint = " Hint: that is the sum over the batch; return one value per item."
            elif value.shape == (n, k):
                hint = " Hint: those are the per-bit terms; sum them over the bits (dim=1)."
            elif value.shape == (k,):
                hint = " Hint: that looks like a sum over the items (dim=0); sum over the bits " \
                       "(dim=1)."
            else:
                hint = ""
            return report(False, len(cases), "", f"{case}: expected shape (n,) = "
                           f"{tuple(expected.shape)}, got {tuple(value.shape)}.{hint}")
        if close(value, expected):
            continue
        mistakes = [
            (((x.abs() - 1.0) ** 2).sum(dim=1),
             "that is the squared L2 version sum_k (|b_ik| - 1)^2; DSH uses the L1 norm: "
             "sum_k | |b_ik| - 1 |."),
            ((x - 1.0).abs().sum(dim=1),
             "the inner abs is missing: |b - 1| pulls every output towards +1; || |b| - 1 ||_1 "
             "pulls each one towards the nearer of +1 and -1."),
            ((x.abs() - 1.0).abs().mean(dim=1),
             "that is the mean over the bits; the L1 norm is their sum (k times larger)."),
            ((x.abs() - 1.0).sum(dim=1),
             "the outer abs is missing: | |b| - 1 | is positive on both sides of 1."),
        ]
        hint = next((h for m, h in mistakes if close(value, m)),
                    "per item: take |b|, subtract 1, take | . | again, sum over the bits.")
        worst = int((value - expected).abs().argmax())
        return report(False, len(cases), "", f"{case}: item {worst} should be "
                       f"{float(expected[worst]):.6f}, got {float(value[worst]):.6f}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.losses.dsh_regularizer", "")
