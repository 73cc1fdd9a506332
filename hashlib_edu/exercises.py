"""Checkers for the notebooks' exercises: compare a student's function with the package's.

Each checker runs the student's function on a few fixed random inputs (a private
seeded generator, so the cases are the same every time), compares it with the
reference implementation in its method module (:mod:`hashlib_edu.methods.dsh`, ...), prints a
friendly verdict with a hint when it can guess the mistake, and returns ``True``/``False``.
A student's function (or class) that still raises ``NotImplementedError`` gets one line,
``Not yet implemented: <what to write>; fill it in and run this cell again.``, and ``False``.

    >>> from hashlib_edu.exercises import check_dsh_loss
    >>> check_dsh_loss(my_dsh_loss)          # doctest: +SKIP
    All 5 cases match hashlib_edu.methods.dsh.dsh_loss. Well done!
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .backbones import count_parameters
from .losses import dsh_regularizer, pairwise_squared_distances, similarity_matrix
from .methods.cnnbh import CNNBHNet
from .methods.dpah import dpah_inter_bound, dpah_inter_hinge, relaxed_hamming_distance
from .methods.dsh import dsh_loss
from .methods.orthohash import OrthoHashLoss

__all__ = ["check_dsh_loss", "check_dpah_bound", "check_knob_model",
           "check_relaxed_hamming_distance", "check_orthohash_loss"]

RTOL, ATOL = 1e-4, 1e-6

#: What each exercise asks for, in the "Not yet implemented: ..." line.
_DSH_TODO = "the DSH loss (one number: the mean over the pairs i < j)"
_DPAH_BOUND_TODO = "the DPAH inter-class bound (one value per sample, with logsumexp)"
_KNOB_MODEL_TODO = "the knob model (its __init__, forward and embed)"
_RELAXED_HAMMING_TODO = "the relaxed Hamming distance (K - b @ theta.T) / 2, shape (n, C)"
_ORTHOHASH_TODO = "the OrthoHash loss (the mean cross-entropy of the margin logits)"


def _as_tensor(value: Any) -> torch.Tensor | None:
    try:
        return torch.as_tensor(value.detach() if torch.is_tensor(value) else value,
                               dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL))


class _NotImplementedYet(str):
    """The message for a student's function that still raises ``NotImplementedError``.

    :func:`_report` prints it as it is (one fixed line, no "Not yet." prefix, nothing from the
    exception), so the output is the same every time.
    """


def _not_implemented(todo: str) -> _NotImplementedYet:
    return _NotImplementedYet(f"Not yet implemented: {todo}; fill it in and run this cell again.")


def _run(student_fn: Callable, args: tuple, case: str,
         todo: str) -> tuple[torch.Tensor | None, str | None]:
    """Call the student's function; return (result as float64 tensor, error message).

    ``todo`` says what the student still has to write, for a function that raises
    ``NotImplementedError`` (the notebooks' placeholder).
    """
    try:
        out = student_fn(*args)
    except NotImplementedError:
        return None, _not_implemented(todo)
    except Exception as exc:  # the student's code may fail in any way: report it, do not crash
        return None, f"{case}: your function raised {type(exc).__name__}: {exc}"
    value = _as_tensor(out)
    if value is None:
        return None, f"{case}: your function returned {type(out).__name__}, not a number or tensor."
    return value, None


def _report(ok: bool, n_cases: int, reference: str, message: str) -> bool:
    if ok:
        print(f"All {n_cases} cases match {reference}. Well done!")
    elif isinstance(message, _NotImplementedYet):
        print(message)
    else:
        print(f"Not yet. {message}")
    return ok


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
        value, error = _run(student_fn, (x.clone(), y.clone(), alpha, margin), case, _DSH_TODO)
        if error:
            return _report(False, len(cases), "", error)
        if value.numel() != 1:
            return _report(False, len(cases), "", f"{case}: return one number (the mean over "
                           f"pairs), not a tensor of shape {tuple(value.shape)}.")
        value = value.reshape(())
        if _close(value, expected):
            continue
        hint = next((h for v, h in _dsh_mistakes(x, y, alpha, margin)
                     if _close(value, v.reshape(()))), "compare term by term with the equation.")
        return _report(False, len(cases), "", f"{case}: expected {float(expected):.6f}, got "
                       f"{float(value):.6f}. Hint: {hint}")
    return _report(True, len(cases), "hashlib_edu.methods.dsh.dsh_loss", "")


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
        value, error = _run(student_fn, (d_own.clone(), d_neg.clone(), alpha), case,
                            _DPAH_BOUND_TODO)
        if error:
            return _report(False, len(cases), "", error)
        if value.numel() == 1 and expected.numel() > 1:
            return _report(False, len(cases), "", f"{case}: return one value per sample, shape "
                           f"({d_own.shape[0]},), not the mean (the loss averages them later).")
        if value.shape != expected.shape:
            return _report(False, len(cases), "", f"{case}: expected shape "
                           f"{tuple(expected.shape)}, got {tuple(value.shape)}.")
        if _close(value, expected):
            continue
        if not bool(torch.isfinite(value).all()):
            return _report(False, len(cases), "", f"{case}: your values overflow to inf/nan. "
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
        hint = next((h for v, h in mistakes if _close(value, v)),
                    "rebuild it from the two inequalities max_j z_j <= log sum_j e^{z_j} and "
                    "max{x, 0} <= log(1 + e^x).")
        worst = int((value - expected).abs().argmax())
        return _report(False, len(cases), "", f"{case}: sample {worst} should be "
                       f"{float(expected[worst]):.6f}, got {float(value[worst]):.6f}. Hint: {hint}")
    return _report(True, len(cases), "hashlib_edu.methods.dpah.dpah_inter_bound", "")


# --------------------------------------------------------------------------- CNNBH


def check_knob_model(model_class: Callable[..., Any], n_bits: int = 48) -> bool:
    """Check a student's CNNBH knob model (notebook 03) against ``methods.cnnbh.CNNBHNet``.

    ``model_class(n_bits)`` must build the paper's CIFAR-10 architecture without
    BatchNorm: 125,562 trainable parameters at ``k = 48``, ``forward`` giving ``(n, 10)``
    logits for ``(n, 3, 32, 32)`` images and ``embed`` giving the ``(n, k)`` knob.
    """
    reference = CNNBHNet(n_bits, batchnorm=False)
    try:
        model = model_class(n_bits)
        model.eval()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            logits, knob = model(x), model.embed(x)
    except NotImplementedError:  # also nn.Module's own, for a class without forward
        return _report(False, 3, "", _not_implemented(_KNOB_MODEL_TODO))
    except Exception as exc:  # report, do not crash the student's notebook
        print(f"Building or running your model raised {type(exc).__name__}: {exc}")
        return False
    problems = []
    n_params, n_ref = count_parameters(model), count_parameters(reference)
    if n_params != n_ref:
        hint = ("the paper has no BatchNorm" if n_params - n_ref == 512 else
                "cuda-convnet pooling rounds up: nn.MaxPool2d(3, 2, ceil_mode=True) gives "
                "32 -> 16 -> 8 -> 4")
        problems.append(f"{n_params:,} parameters, expected {n_ref:,} (hint: {hint})")
    if tuple(logits.shape) != (2, 10):
        problems.append(f"forward gave shape {tuple(logits.shape)}, expected (2, 10)")
    if tuple(knob.shape) != (2, n_bits):
        problems.append(f"embed gave shape {tuple(knob.shape)}, expected (2, {n_bits})")
    ok = not problems
    return _report(ok, 3, "hashlib_edu.methods.cnnbh.CNNBHNet", "; ".join(problems))


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
        value, error = _run(student_fn, (b.clone(), theta.clone()), case, _RELAXED_HAMMING_TODO)
        if error:
            return _report(False, len(cases), "", error)
        (n, k), n_cls = b.shape, theta.shape[0]
        if value.shape != expected.shape:
            hint = (" Hint: that is the (C, n) transpose; put the codes on the rows: "
                    "b @ theta.T, not theta @ b.T." if value.shape == (n_cls, n) else "")
            return _report(False, len(cases), "", f"{case}: expected shape (n, C) = "
                           f"{tuple(expected.shape)}, got {tuple(value.shape)}.{hint}")
        if _close(value, expected):
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
        hint = next((h for v, h in mistakes if _close(value, v)),
                    "for +-1 vectors, b . theta = K - 2 * (number of differing bits).")
        i, c = divmod(int((value - expected).abs().argmax()), n_cls)
        return _report(False, len(cases), "", f"{case}: d(b_{i}, theta_{c}) should be "
                       f"{float(expected[i, c]):.6f}, got {float(value[i, c]):.6f}. Hint: {hint}")
    return _report(True, len(cases), "hashlib_edu.methods.dpah.relaxed_hamming_distance", "")


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
        value, error = _run(student_fn, (v.clone(), y.clone(), targets.clone(), scale, margin),
                            case, _ORTHOHASH_TODO)
        if error:
            return _report(False, len(cases), "", error)
        if value.numel() != 1:
            per_sample = (value.numel() == y.shape[0]
                          and _close(value.reshape(-1).mean(), expected.reshape(())))
            hint = (" Hint: those are the per-sample losses; return their mean." if per_sample
                    else "")
            return _report(False, len(cases), "", f"{case}: return one number (the mean over "
                           f"samples), not a tensor of shape {tuple(value.shape)}.{hint}")
        value = value.reshape(())
        if _close(value, expected):
            continue
        hint = next((h for m, h in _orthohash_mistakes(v, y, targets, scale, margin)
                     if _close(value, m.reshape(()))),
                    "build the (n, C) cosines first, then the logits, then F.cross_entropy.")
        return _report(False, len(cases), "", f"{case}: expected {float(expected):.6f}, got "
                       f"{float(value):.6f}. Hint: {hint}")
    return _report(True, len(cases), "hashlib_edu.methods.orthohash.OrthoHashLoss", "")
