"""Checkers for notebook 06 (OrthoHash: the loss, MaxHD targets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..codes import bernoulli_targets, min_hamming_distance
from ..methods.orthohash import OrthoHashLoss, maxhd_targets
from .checking import (
    close,
    report,
    run_student,
)

__all__ = ["check_orthohash_loss", "check_maxhd_targets"]

_ORTHOHASH_TODO = "the OrthoHash loss (the mean cross-entropy of the margin logits)"
_MAXHD_TODO = "the MaxHD targets of Algorithm 3, a (C, K) tensor of +-1"


# --------------------------------------------------------------------------- OrthoHash


def _orthohash_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float, float]]:
    g = torch.Generator().manual_seed(2021)
    cases = []
    # codes of norm far from 1 (and far from sqrt(K)), scales != 1 and margins > 0, so that
    # each typical mistake gives a different value
    for n, k, n_cls, scale, margin in [(6, 16, 4, 4.0, 0.2), (8, 32, 10, 32 ** 0.5, 0.3),
                                       (5, 8, 3, 2.5, 0.5)]:
        v = torch.randn(n, k, generator=g, dtype=torch.float64) * 3.0
        y = torch.randint(0, n_cls, (n,), generator=g)
        targets = torch.randint(0, 2, (n_cls, k), generator=g).double() * 2.0 - 1.0
        cases.append((f"random case n={n}, K={k}, C={n_cls}, scale={scale:.4g}, "
                      f"margin={margin}", v, y, targets, scale, margin))
    return cases


def _orthohash_reference(v: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, scale: float,
                         margin: float) -> torch.Tensor:
    """The package's :class:`OrthoHashLoss` (OrthoCos, softmax cross-entropy) on these targets."""
    loss = OrthoHashLoss(v.shape[1], targets.shape[0], margin=margin, scale=scale,
                         targets=targets, margin_type="cos", loss_type="ce")
    return loss(v, y)


def _orthohash_mistakes(v: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, scale: float,
                        margin: float):
    """Values a few typical mistakes would give (scalars), with the hint for each."""
    v_hat, t_hat = F.normalize(v, dim=1), F.normalize(targets, dim=1)
    one_hot = F.one_hot(y, targets.shape[0]).to(v.dtype)
    cos = v_hat @ t_hat.T

    def ce(logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(logits, y, reduction=reduction)

    return [
        (ce(scale * cos),
         "the margin has no effect: it is missing, or subtracted from every class (a shift of "
         "all the logits leaves the softmax unchanged); subtract it from the true class only: "
         "scale * (cos - margin * one_hot(y))."),
        (ce(scale * (cos + margin * one_hot)),
         "the margin is added to the true class's cosine; it is subtracted (cos - margin), so "
         "that the true class must win by at least the margin."),
        (ce(cos - margin * one_hot),
         "the scale seems to be missing: the logits are scale * (cos - margin * one_hot(y))."),
        (ce(scale * (v @ targets.T - margin * one_hot)),
         "those are dot products v . t, not cosines: L2-normalize the codes and the targets "
         "(F.normalize(v, dim=1); a +-1 target has norm sqrt(K))."),
        (ce(scale * (v @ t_hat.T - margin * one_hot)),
         "the codes v are not L2-normalized: use F.normalize(v, dim=1) before the product."),
        (ce(scale * (v_hat @ targets.T - margin * one_hot)),
         "the targets are not L2-normalized: a +-1 row has norm sqrt(K), so divide by it."),
        (ce(scale * (cos - margin * one_hot), "sum"),
         "that is the sum over samples; the loss is the mean."),
    ]


def check_orthohash_loss(student_fn: Callable[..., Any]) -> bool:
    r"""Check a student's OrthoHash loss (notebook 06) against :class:`.orthohash.OrthoHashLoss`.

    The student's function is called as ``student_fn(v, y, targets, scale, margin)`` with
    ``v`` the ``(n, K)`` float64 continuous codes, ``y`` the ``(n,)`` int64 class ids,
    ``targets`` the ``(C, K)`` float64 ``+-1`` class targets and ``scale``, ``margin``
    floats, and must return the scalar

        mean_i CE(logits_i, y_i),  logits_ic = scale * (cos(v_i, t_c) - margin * [c == y_i])

    (OrthoCos with softmax cross-entropy; the reference is ``OrthoHashLoss`` built with
    these ``targets``). Three cases; tolerance ``rtol=1e-4``.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _orthohash_cases()
    for case, v, y, targets, scale, margin in cases:
        expected = _orthohash_reference(v, y, targets, scale, margin)
        value, error = run_student(student_fn, (v.clone(), y.clone(), targets.clone(), scale, margin),
                            case, _ORTHOHASH_TODO)
        if error:
            return report(False, len(cases), "", error)
        if value.numel() != 1:
            per_sample = (value.numel() == y.shape[0]
                          and close(value.reshape(-1).mean(), expected.reshape(())))
            hint = (" Hint: those are the per-sample losses; return their mean." if per_sample
                    else "")
            return report(False, len(cases), "", f"{case}: return one number (the mean over "
                           f"samples), not a tensor of shape {tuple(value.shape)}.{hint}")
        value = value.reshape(())
        if close(value, expected):
            continue
        hint = next((h for m, h in _orthohash_mistakes(v, y, targets, scale, margin)
                     if close(value, m.reshape(()))),
                    "build the (n, C) cosines first, then the logits, then F.cross_entropy.")
        return report(False, len(cases), "", f"{case}: expected {float(expected):.6f}, got "
                       f"{float(value):.6f}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.methods.orthohash.OrthoHashLoss", "")

# --------------------------------------------------------------------------- MaxHD (06)

#: The cases ``(C, K, seed)``; each takes the reference ~10 ms.
_MAXHD_CASES = [(10, 16, 0), (10, 32, 1), (10, 64, 2)]

#: How many bits below the reference's minimum distance a student's targets may be. Algorithm 3
#: with the paper's settings lands on one of two neighbouring values: over seeds 0..299 the
#: reference's minimum distance at C = 10 is 7 or 8 (K = 16), 15 or 16 (K = 32), 31 or 32
#: (K = 64), so a correct version with another random stream is never more than 1 below it,
#: while Bernoulli targets reach at most 6, 13 and 28 (2000 seeds) and cannot pass all three.
_MAXHD_SLACK = 1


def check_maxhd_targets(student_fn: Callable[..., Any]) -> bool:
    r"""Check a student's MaxHD targets (notebook 06, OrthoHash supplementary Algorithm 3).

    The student's function is called as ``student_fn(n_classes, n_bits, seed)`` and must
    return ``(C, K)`` targets of ``+-1`` (tensor or array; the ``seed`` is for the
    student's own generator). The random streams differ from the reference
    :func:`hashlib_edu.methods.orthohash.maxhd_targets`, so the checker compares properties,
    not rows: the shape ``(C, K)``, entries exactly ``+-1``, no two identical rows, and a
    minimum Hamming distance at least the reference's (same ``C``, ``K``, ``seed``) minus
    one bit (``_MAXHD_SLACK``; the reference itself varies by one bit across seeds). Three
    cases, ``C = 10`` and ``K = 16, 32, 64``.

    Returns:
        ``True`` if every case passes, else ``False`` (a message says which and why).
    """
    for n_classes, n_bits, seed in _MAXHD_CASES:
        case = f"C={n_classes}, K={n_bits}, seed={seed}"
        value, error = run_student(student_fn, (n_classes, n_bits, seed), case, _MAXHD_TODO)
        if error:
            return report(False, len(_MAXHD_CASES), "", error)
        if value.shape != (n_classes, n_bits):
            hint = (" Hint: that is the (K, C) transpose; one row per class." if
                    value.shape == (n_bits, n_classes) else "")
            return report(False, len(_MAXHD_CASES), "", f"{case}: expected shape (C, K) = "
                           f"{(n_classes, n_bits)}, got {tuple(value.shape)}.{hint}")
        if not bool((value.abs() == 1.0).all()):
            if bool(((value == 0.0) | (value == 1.0)).all()):
                hint = ("those are {0, 1} bits (torch.bernoulli gives them); map them to +-1 "
                        "with 2 * bits - 1.")
            else:
                hint = "every entry must be exactly +1 or -1."
            bad = value[value.abs() != 1.0]
            return report(False, len(_MAXHD_CASES), "", f"{case}: found entries such as "
                           f"{float(bad[0]):g}. Hint: {hint}")
        same = (value @ value.T == n_bits) & ~torch.eye(n_classes, dtype=torch.bool)
        if bool(same.any()):
            i, j = (int(t) for t in same.nonzero()[0])
            return report(False, len(_MAXHD_CASES), "", f"{case}: classes {i} and {j} have the "
                           "same target. Hint: accept a candidate only if its distance to every "
                           "target accepted so far is at least currdist * K (> 0).")
        reference = min_hamming_distance(maxhd_targets(n_classes, n_bits, seed=seed))
        distance = min_hamming_distance(value.numpy())
        if distance >= reference - _MAXHD_SLACK:
            continue
        bernoulli = [min_hamming_distance(bernoulli_targets(n_classes, n_bits, seed=s))
                     for s in range(20)]
        rule = ("reject a candidate when any normalized distance D(c, o_j) / K to the targets "
                "accepted so far is below currdist (start at 0.61), and lower currdist by 0.01 "
                "only after 10,000 rejections (one counter for all classes, reset when it "
                "reaches 10,000).")
        if distance <= max(bernoulli):
            hint = (f"that is no better than Bernoulli targets (their minimum distance here is "
                    f"at most {max(bernoulli)} over 20 seeds): {rule}")
        else:
            hint = (f"better than Bernoulli targets (at most {max(bernoulli)} over 20 seeds), but "
                    f"currdist seems to drop too early: {rule}")
        return report(False, len(_MAXHD_CASES), "", f"{case}: your targets' minimum Hamming "
                       f"distance is {distance}, the reference's {reference} (at least "
                       f"{reference - _MAXHD_SLACK} expected). Hint: {hint}")
    return report(True, len(_MAXHD_CASES), "the minimum distances of "
                   "hashlib_edu.methods.orthohash.maxhd_targets", "")
