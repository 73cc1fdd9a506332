"""Checkers for notebook 02 (LSH, ITQ)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..methods.baselines import LSH
from .checking import (
    close,
    report,
    run_student,
)

__all__ = ["check_lsh_codes", "check_itq_rotation_step"]

_LSH_TODO = "the LSH codes sign((x - mean) @ projections) in {-1, +1}, shape (n, k)"
_ITQ_ROTATION_TODO = "the ITQ rotation step R = U Z^T from the SVD V^T B = U S Z^T, shape (c, c)"


# --------------------------------------------------------------------------- LSH


def _lsh_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1998)
    cases = []
    for n, d, k in [(6, 5, 4), (20, 12, 16), (9, 3, 8)]:
        x = torch.randn(n, d, generator=g, dtype=torch.float64) + 2.0  # far from the origin
        mean = x.mean(dim=0) + 0.3 * torch.randn(d, generator=g, dtype=torch.float64)
        projections = torch.randn(d, k, generator=g, dtype=torch.float64)
        cases.append((f"random case n={n}, d={d}, k={k}", x, mean, projections))
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    mean = x[2].clone()  # row 2 sits on every hyperplane: all its projections are exactly 0
    cases.append(("a point at the mean (every projection is 0; sign(0) = +1)", x, mean,
                  torch.randn(6, 5, generator=g, dtype=torch.float64)))
    return cases


def _lsh_reference(x: torch.Tensor, mean: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """The package's :class:`~hashlib_edu.methods.baselines.LSH` with these hyperplanes."""
    lsh = LSH(projections.shape[1])
    lsh.mean_, lsh.projections_ = mean.numpy(), projections.numpy()
    lsh.n_features_in_ = x.shape[1]
    return torch.as_tensor(lsh.encode(x.numpy()), dtype=torch.float64)


def check_lsh_codes(student_fn: Callable[..., Any]) -> bool:
    r"""Check a student's LSH encoder (notebook 02) against :class:`.baselines.LSH`.

    The student's function is called as ``student_fn(x, mean, projections)`` with ``x`` the
    ``(n, d)`` float64 data, ``mean`` the ``(d,)`` training mean and ``projections`` the
    ``(d, k)`` Gaussian hyperplane normals, and must return the ``(n, k)`` codes

        b = sign((x - mean) @ projections) in {-1, +1},  sign(0) = +1,

    as a tensor or array (the reference is ``LSH.encode`` with these hyperplanes). Four
    cases; the last has a point exactly at the mean.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _lsh_cases()
    for case, x, mean, projections in cases:
        expected = _lsh_reference(x, mean, projections)
        value, error = run_student(student_fn, (x.clone(), mean.clone(), projections.clone()), case,
                            _LSH_TODO)
        if error:
            return report(False, len(cases), "", error)
        (n, k) = expected.shape
        if value.shape != expected.shape:
            hint = (" Hint: that is the (k, n) transpose; put the points on the rows: "
                    "(x - mean) @ projections." if tuple(value.shape) == (k, n) else "")
            return report(False, len(cases), "", f"{case}: expected shape (n, k) = "
                           f"{(n, k)}, got {tuple(value.shape)}.{hint}")
        if torch.equal(value, expected):
            continue
        values = set(value.unique().tolist())
        projected = (x - mean) @ projections
        if values <= {0.0, 1.0} and torch.equal(2 * value - 1, expected):
            hint = "those are {0, 1} bits; the course's codes are {-1, +1}: 2 * bits - 1."
        elif 0.0 in values and torch.equal(torch.where(value == 0, 1.0, value), expected):
            hint = ("some codes are 0: torch.sign(0) = 0, but a code bit must be +-1; use "
                    "torch.where(v >= 0, 1, -1) (the course's sign(0) = +1).")
        elif torch.equal(torch.where(x @ projections >= 0, 1.0, -1.0), value):
            hint = ("the data are not centered: subtract the training mean first, so the "
                    "hyperplanes pass through the centre of the data.")
        elif torch.equal(torch.where((x - x.mean(dim=0)) @ projections >= 0, 1.0, -1.0), value):
            hint = ("you centered with the mean of x itself; use the `mean` you are given (the "
                    "training mean), so that every batch is encoded the same way.")
        elif torch.equal(torch.where(projected >= 0, -1.0, 1.0), value):
            hint = "the signs are flipped: +1 where (x - mean) @ projections >= 0."
        else:
            hint = "bit j of a point x is +1 when (x - mean) . projections[:, j] >= 0, else -1."
        i, j = divmod(int((value - expected).abs().argmax()), k)
        return report(False, len(cases), "", f"{case}: bit {j} of point {i} should be "
                       f"{int(expected[i, j]):+d}, got {float(value[i, j]):g}. Hint: {hint}")
    return report(True, len(cases), "hashlib_edu.methods.baselines.LSH.encode", "")

# --------------------------------------------------------------------------- ITQ (notebook 02)


def _itq_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2011)
    cases = []
    # n != c everywhere, so that the rotated data V R (n, c) or B^T V-shaped mistakes show;
    # V has unequal column scales (like PCA projections) and B = sign(V R_0) for a random
    # rotation R_0 (one ITQ iteration), so V^T B is far from symmetric and well conditioned
    for n, c in [(12, 3), (40, 6), (100, 16)]:
        v = torch.randn(n, c, generator=g, dtype=torch.float64)
        v = v * torch.linspace(3.0, 0.5, c, dtype=torch.float64)
        v = v - v.mean(dim=0)
        q, r = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))
        b = torch.where(v @ (q * torch.sign(torch.diagonal(r))) >= 0, 1.0, -1.0)
        cases.append((f"random centered V (n={n}, c={c}), B = sign(V R_0)", v,
                      b.to(torch.float64)))
    return cases


def _itq_reference(v: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Procrustes step of :func:`hashlib_edu.methods.baselines.itq_rotation`, in torch.

    The package's ``itq_rotation`` runs the whole alternation (numpy, from a random start) and
    does not expose one step with a given ``B``; this is its line ``U, _s, Wt = svd(V.T @ B);
    R = U @ Wt``. Unique when ``V^T B`` is nonsingular (it is in every case here).
    """
    u, _s, zt = torch.linalg.svd(v.T @ b)
    return u @ zt


def _columns_match_up_to_sign(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``a``'s columns equal ``b``'s up to their signs (singular vectors' only freedom)."""
    eye = torch.eye(b.shape[1], dtype=b.dtype)
    return a.shape == b.shape and close((a.T @ b).abs(), eye)


def _itq_hint(value: torch.Tensor, v: torch.Tensor, b: torch.Tensor) -> str:
    u, _s, zt = torch.linalg.svd(v.T @ b)
    z = zt.T
    if close(value, zt.T @ u.T):
        return ("that is R^T = Z U^T, the transpose of the answer: the factors are in the wrong "
                "order, or the SVD is of B^T V (= Z S U^T) instead of V^T B. Take "
                "U, S, Zt = torch.linalg.svd(V.T @ B) and return U @ Zt.")
    if close(value, u @ z):
        return ("that is U Z, not U Z^T: torch.linalg.svd (like numpy) already returns Z^T "
                "(its third output, Vh), so return U @ Vh without another .T.")
    if _columns_match_up_to_sign(value, u):
        return ("that is U alone (the left singular vectors of V^T B); the rotation uses both "
                "factors: R = U Z^T.")
    if _columns_match_up_to_sign(value, z) or _columns_match_up_to_sign(value.T, z):
        return ("that is Z (or Z^T) alone (the right singular vectors of V^T B); the rotation "
                "uses both factors: R = U Z^T.")
    eye = torch.eye(v.shape[1], dtype=v.dtype)
    if close(value, torch.linalg.lstsq(v, b).solution):
        return ("that is the unconstrained least-squares solution (lstsq: (V^T V)^-1 V^T B), "
                "which is not orthogonal; ITQ restricts R to rotations, and the best one is "
                "R = U Z^T from the SVD V^T B = U S Z^T (orthogonal Procrustes).")
    if not close(value.T @ value, eye):
        deviation = float((value.T @ value - eye).abs().max())
        return (f"your R is not orthogonal (R^T R differs from the identity by up to "
                f"{deviation:.3g}); the Procrustes solution R = U Z^T is a product of two "
                "orthogonal matrices.")
    return ("your R is orthogonal but does not minimize ||B - V R||_F: the minimizer maximizes "
            "tr(R^T V^T B), which gives R = U Z^T for V^T B = U S Z^T.")


def check_itq_rotation_step(student_fn: Callable[..., Any]) -> bool:
    r"""Check a student's ITQ rotation step (notebook 02, orthogonal Procrustes).

    The student's function is called as ``student_fn(V, B)`` with ``V`` an ``(n, c)``
    float64 tensor (centered, projected data) and ``B`` an ``(n, c)`` float64 tensor of
    ``+-1``, and must return the ``(c, c)`` orthogonal ``R`` minimizing ``||B - V R||_F``:

        V^T B = U S Z^T (SVD),  R = U Z^T.

    The reference is the Procrustes line of :func:`hashlib_edu.methods.baselines.itq_rotation`,
    computed here with ``torch.linalg.svd`` (``itq_rotation`` runs the whole alternation
    and does not expose a single step). Three cases with ``n != c``; tolerance
    ``rtol=1e-4``, ``atol=1e-6``.

    Returns:
        ``True`` if every case matches, else ``False`` (a message says which and why).
    """
    cases = _itq_cases()
    for case, v, b in cases:
        expected = _itq_reference(v, b)
        value, error = run_student(student_fn, (v.clone(), b.clone()), case, _ITQ_ROTATION_TODO)
        if error:
            return report(False, len(cases), "", error)
        (n, c) = v.shape
        if value.shape != expected.shape:
            hint = (" Hint: that is the (n, c) rotated data V @ R; return the rotation R itself."
                    if value.shape == (n, c) else "")
            return report(False, len(cases), "", f"{case}: expected shape (c, c) = "
                           f"{tuple(expected.shape)}, got {tuple(value.shape)}.{hint}")
        if close(value, expected):
            continue
        i, j = divmod(int((value - expected).abs().argmax()), c)
        return report(False, len(cases), "", f"{case}: R[{i}, {j}] should be "
                       f"{float(expected[i, j]):.6f}, got {float(value[i, j]):.6f}. "
                       f"Hint: {_itq_hint(value, v, b)}")
    return report(True, len(cases), "the orthogonal Procrustes step of "
                   "hashlib_edu.methods.baselines.itq_rotation", "")
