"""Binary codes: signs, {-1,+1} <-> {0,1}, bit packing, the quantization error, and code
constructions with large distances (random Bernoulli codes, rows of Hadamard matrices) that
the class-target methods start from.

Conventions used everywhere in the course
----------------------------------------
* A *code* of ``k`` bits is a row of ``k`` values in ``{-1, +1}`` (the form the
  papers use) or, equivalently, in ``{0, 1}`` with ``bit 1 <=> +1``.
* ``sign(0) = +1``: a real value exactly at the threshold becomes ``+1``, so
  every real vector has exactly one code (``torch.sign`` would give 0).
* Packed codes are ``np.packbits`` of the ``{0, 1}`` bits along the last axis
  (big-endian bit order inside each byte, the last byte zero-padded), dtype
  ``uint8``, shape ``(n, ceil(k / 8))``. The number of bits must be kept beside
  them, since padding hides it.

Code constructions return ``(C, K)`` **torch float32** tensors of ``+-1`` (ready for a
loss; ``.numpy()`` for numpy work), deterministic given ``seed`` through private generators
(none touches the global random state). This module has no models and writes no files.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

__all__ = [
    "concatenate_codes",
    "as_numpy",
    "sign",
    "to_pm1",
    "to_bits",
    "pack_codes",
    "unpack_codes",
    "check_binary",
    "quantization_error",
    "check_target_sizes",
    "bernoulli_targets",
    "hadamard_matrix",
    "hadamard_targets",
    "min_hamming_distance",
    "expected_hamming_distance",
]


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        return x.detach().cpu().numpy()
    return np.asarray(x)


def sign(x: Any) -> np.ndarray:
    """Binarize real values to ``{-1, +1}`` with ``sign(0) = +1``.

    Args:
        x: ``(n, k)`` real values (numpy array or torch tensor).

    Returns:
        ``(n, k)`` int8 array in ``{-1, +1}``.
    """
    x = as_numpy(x)
    if x.dtype == bool:
        raise TypeError("sign() takes real values; boolean arrays are bits already: use to_pm1().")
    out = np.where(x >= 0, 1, -1).astype(np.int8)
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("sign(): input contains NaN; a NaN has no sign (did training diverge?).")
    return out


def check_binary(codes: Any, name: str = "codes") -> tuple[np.ndarray, str]:
    """Check that ``codes`` hold only ``{-1, +1}`` or only ``{0, 1}`` values.

    Returns:
        ``(codes as numpy, kind)`` with kind ``"pm1"`` or ``"01"``.

    Raises:
        ValueError: with a message naming the offending values otherwise.
    """
    arr = as_numpy(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, k) of bits; got shape {arr.shape}.")
    if arr.dtype == bool:
        return arr.astype(np.uint8), "01"
    values = np.unique(arr)
    if values.size == 0 or np.all(np.isin(values, (-1, 1))):
        return arr, "pm1"
    if np.all(np.isin(values, (0, 1))):
        return arr, "01"
    shown = ", ".join(str(v) for v in values[:6])
    raise ValueError(
        f"{name} must be binary, in {{-1, +1}} or {{0, 1}}; found values {shown}"
        f"{' ...' if values.size > 6 else ''}. Binarize real outputs first with "
        "hashlib_edu.codes.sign(x)."
    )


def to_bits(codes: Any) -> np.ndarray:
    """``{-1, +1}`` (or already ``{0, 1}``) codes -> ``(n, k)`` uint8 bits, ``+1 -> 1``."""
    arr, kind = check_binary(codes)
    if kind == "01":
        return arr.astype(np.uint8)
    return (arr > 0).astype(np.uint8)


def to_pm1(codes: Any) -> np.ndarray:
    """``{0, 1}`` (or already ``{-1, +1}``) codes -> ``(n, k)`` int8 in ``{-1, +1}``, ``1 -> +1``."""
    arr, kind = check_binary(codes)
    if kind == "pm1":
        return arr.astype(np.int8)
    return (2 * arr.astype(np.int8) - 1).astype(np.int8)


def pack_codes(codes: Any) -> np.ndarray:
    """Pack ``(n, k)`` binary codes into ``(n, ceil(k/8))`` uint8 (``np.packbits`` order).

    Args:
        codes: ``(n, k)`` in ``{-1, +1}`` or ``{0, 1}``.
    """
    return np.packbits(to_bits(codes), axis=1)


def unpack_codes(packed: Any, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``(n, ceil(k/8))`` uint8 -> ``(n, k)`` int8 in ``{-1, +1}``."""
    packed = as_numpy(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise ValueError(
            f"packed codes must be a 2-D uint8 array; got dtype {packed.dtype}, shape {packed.shape}."
        )
    n_bits = int(n_bits)
    if n_bits <= 0 or (n_bits + 7) // 8 != packed.shape[1]:
        raise ValueError(
            f"n_bits={n_bits} does not fit packed codes with {packed.shape[1]} bytes per row "
            f"(need {8 * packed.shape[1] - 7}..{8 * packed.shape[1]} bits)."
        )
    bits = np.unpackbits(packed, axis=1, count=n_bits)
    return (2 * bits.astype(np.int8) - 1).astype(np.int8)


def concatenate_codes(*codes: Any) -> np.ndarray:
    """Concatenate the codes of several models item by item: the *ensemble* code.

    DSH's supplementary (Table 3) concatenates the 12-bit codes of models M1..M4 into
    24-, 36- and 48-bit codes. Row ``i`` of every input must describe the same item, so
    all inputs need the same number of rows (query codes with query codes, database with
    database).

    Args:
        *codes: two or more ``(n, k_j)`` arrays in ``{-1, +1}`` (or ``{0, 1}``).

    Returns:
        ``(n, sum_j k_j)`` int8 in ``{-1, +1}``.
    """
    if len(codes) == 1 and isinstance(codes[0], (list, tuple)):
        codes = tuple(codes[0])
    if not codes:
        raise ValueError("concatenate_codes() needs at least one code array.")
    arrays = [to_pm1(c) for c in codes]
    rows = {a.shape[0] for a in arrays}
    if len(rows) != 1:
        raise ValueError(
            f"code arrays have different numbers of rows {[a.shape[0] for a in arrays]}; "
            "concatenate the codes of the same items (all query codes, or all database codes)."
        )
    return np.concatenate(arrays, axis=1)


def quantization_error(v: Any, rotation: Any = None, *, rescale: bool = False,
                       per_row: bool = False) -> float | np.ndarray:
    r"""How far real-valued codes are from their binarization: ``||sign(v R) - v R||^2``.

    * ITQ's objective (Gong & Lazebnik): ``v`` is the ``(n, k)`` projected data ``V`` and
      ``rotation`` the ``(k, k)`` orthogonal ``R``; the result is ``||sign(VR) - VR||_F^2``.
    * ``rescale=True``: each row is first scaled to the norm ``sqrt(K)`` of a ``+-1`` code
      (retrieval depends only on directions): OrthoHash's scale-free error
      ``||sqrt(K) v/||v|| - sign(v)||^2``, in ``[0, 2K(1 - 1/sqrt(K))]`` per row and 0 when
      ``v`` is a multiple of a ``+-1`` vector (no all-zero row then).

    Args:
        v: ``(n, k)`` real values (numpy or torch).
        rotation: ``(k, k)`` matrix applied first (``None``: the identity).
        rescale: scale each row to norm ``sqrt(k)`` before comparing.
        per_row: return the ``(n,)`` per-row errors instead of their sum.

    Returns:
        ``float`` (the sum), or an ``(n,)`` float64 array with ``per_row=True``.
    """
    x = np.asarray(as_numpy(v), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"v must be (n, k); got shape {x.shape}.")
    if rotation is not None:
        x = x @ np.asarray(as_numpy(rotation), dtype=np.float64)
    if rescale:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("quantization_error(rescale=True): a row is all zeros; it has no "
                             "direction to rescale.")
        x = np.sqrt(x.shape[1]) * x / norms
    rows = ((sign(x) - x) ** 2).sum(axis=1)
    return rows if per_row else float(rows.sum())


# --------------------------------------------------------------------------- code constructions


def check_target_sizes(n_classes: int, n_bits: int) -> tuple[int, int]:
    if int(n_classes) < 1 or int(n_bits) < 1:
        raise ValueError(
            f"n_classes and n_bits must be positive integers; got n_classes={n_classes}, "
            f"n_bits={n_bits}."
        )
    return int(n_classes), int(n_bits)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


# --------------------------------------------------------------------------- Bernoulli


def bernoulli_targets(n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Random targets: each bit is ``+1`` or ``-1`` with probability 1/2 (Algorithm 1's ``o``).

    Two independent such codes differ in ``K/2`` bits on average (see
    :func:`expected_hamming_distance` with ``p = 0.5``), but nothing stops two
    classes from drawing close (or, for small ``K``, identical) targets.

    Returns:
        ``(n_classes, n_bits)`` float32 tensor of ``+-1``.
    """
    n_classes, n_bits = check_target_sizes(n_classes, n_bits)
    prob = torch.full((n_classes, n_bits), 0.5)
    return torch.bernoulli(prob, generator=_generator(seed)) * 2.0 - 1.0


# --------------------------------------------------------------------------- Hadamard


def _is_prime(q: int) -> bool:
    if q < 2:
        return False
    return all(q % d for d in range(2, math.isqrt(q) + 1))


def _jacobsthal(q: int) -> np.ndarray:
    """``Q[i, j] = chi(j - i)`` with ``chi`` the quadratic character mod the prime ``q``."""
    chi = -np.ones(q, dtype=np.int64)
    chi[0] = 0
    chi[(np.arange(1, q) ** 2) % q] = 1
    idx = np.arange(q)
    return chi[(idx[None, :] - idx[:, None]) % q]


def _paley_1(q: int) -> np.ndarray:
    """Paley construction I: Hadamard matrix of order ``q + 1`` for a prime ``q = 3 (mod 4)``."""
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = _jacobsthal(q)
    return s + np.eye(q + 1, dtype=np.int64)


def _paley_2(q: int) -> np.ndarray:
    """Paley construction II: Hadamard matrix of order ``2(q + 1)`` for a prime ``q = 1 (mod 4)``."""
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = 1
    s[1:, 1:] = _jacobsthal(q)
    return np.kron(s, np.array([[1, -1], [-1, -1]])) + np.kron(
        np.eye(q + 1, dtype=np.int64), np.array([[1, 1], [1, -1]])
    )


def _base_hadamard(order: int) -> np.ndarray | None:
    if order == 1:
        return np.ones((1, 1), dtype=np.int64)
    if order == 2:
        return np.array([[1, 1], [1, -1]], dtype=np.int64)
    if order % 4:
        return None
    if _is_prime(order - 1) and (order - 1) % 4 == 3:
        return _paley_1(order - 1)
    half = order // 2
    if _is_prime(half - 1) and (half - 1) % 4 == 1:
        return _paley_2(half - 1)
    return None


def hadamard_matrix(order: int) -> torch.Tensor | None:
    """A ``(order, order)`` Hadamard matrix ``H`` (entries ``+-1``, ``H H^T = order * I``), or ``None``.

    Built as ``Sylvester(2^a) (x) P`` (Kronecker product) where ``P`` is ``[1]``,
    ``[[1, 1], [1, -1]]``, or a Paley matrix (construction I: order ``q + 1`` for a
    prime ``q = 3 mod 4``, e.g. 12, 20, 24, 44, 48; construction II: order ``2(q + 1)``
    for a prime ``q = 1 mod 4``, e.g. 12, 28, 36, 60). This covers every power of two
    and all the code lengths used in the course (12, 16, 24, 32, 36, 48, 64, 128, ...).
    Orders for which none of these constructions applies (all orders that are not 1, 2
    or a multiple of 4, where no Hadamard matrix exists, and a few multiples of 4 such
    as 52 or 92) give ``None``.

    Returns:
        float32 tensor, or ``None`` when no construction is available.
    """
    order = int(order)
    if order < 1:
        raise ValueError(f"order must be positive; got {order}.")
    power = 1
    while order % power == 0:
        base = _base_hadamard(order // power)
        if base is not None:
            h = base
            sylvester = np.array([[1, 1], [1, -1]], dtype=np.int64)
            while h.shape[0] < order:
                h = np.kron(sylvester, h)
            # every construction above is proven, but a cheap check keeps it honest
            # (float64 BLAS: exact for these small integers, and far faster than int64)
            hf = h.astype(np.float64)
            if not np.array_equal(hf @ hf.T, order * np.eye(order)):
                raise RuntimeError(f"Hadamard construction of order {order} failed its check.")
            return torch.from_numpy(h).float()
        power *= 2
    return None


def hadamard_targets(n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Targets from the rows of a ``K x K`` Hadamard matrix ``H`` (CSQ's recipe, OrthoHash D.3).

    * ``C <= K``: ``C`` distinct rows of ``H``, chosen at random with ``seed``; any two
      are orthogonal, i.e. exactly ``K/2`` bits apart.
    * ``K < C <= 2K``: all ``K`` rows of ``H`` plus ``C - K`` random rows of ``-H``. A
      row and its negation are ``K`` bits apart, every other pair ``K/2``, so the
      minimum distance is still ``K/2`` (the best possible on average), though those
      antipodal pairs are not orthogonal.
    * ``C > 2K``: the paper falls back to Bernoulli targets; so do we (silently, as
      in the paper).
    * ``K`` for which :func:`hadamard_matrix` has no construction (``K`` not 1, 2 or
      a multiple of 4, or one of the rare uncovered multiples of 4 such as 52): we
      fall back to Bernoulli targets too and emit a ``UserWarning`` saying so. Use a
      power of two if you need exact orthogonality.

    The seed only decides which rows are used and which class gets which row.

    Returns:
        ``(n_classes, n_bits)`` float32 tensor of ``+-1``.
    """
    n_classes, n_bits = check_target_sizes(n_classes, n_bits)
    if 2 * n_bits < n_classes:
        return bernoulli_targets(n_classes, n_bits, seed)
    h = hadamard_matrix(n_bits)
    if h is None:
        warnings.warn(
            f"No Hadamard matrix construction for K={n_bits} bits; using Bernoulli targets "
            "instead. Choose K as a power of two (or 12, 24, 36, 48, ...) for Hadamard targets.",
            UserWarning,
            stacklevel=2,
        )
        return bernoulli_targets(n_classes, n_bits, seed)
    g = _generator(seed)
    if n_classes <= n_bits:
        rows = h[torch.randperm(n_bits, generator=g)[:n_classes]]
    else:
        extra = -h[torch.randperm(n_bits, generator=g)[: n_classes - n_bits]]
        rows = torch.cat([h, extra])
    return rows[torch.randperm(n_classes, generator=g)].contiguous()


def min_hamming_distance(targets: Any, block_rows: int = 2048) -> int:
    """Smallest Hamming distance between two different rows (classes) of ``targets``.

    Args:
        targets: ``(C, K)`` binary codes, ``{-1, +1}`` or ``{0, 1}``, numpy or torch; ``C >= 2``.
        block_rows: rows compared at a time (bounds the memory for large ``C``).

    Returns:
        ``int`` in ``0..K`` (0 when two classes share a target).
    """
    codes = to_pm1(targets).astype(np.int64)
    n, k = codes.shape
    if n < 2:
        raise ValueError("min_hamming_distance needs at least two rows (classes).")
    best = k
    for start in range(0, n, block_rows):
        dots = codes[start : start + block_rows] @ codes.T  # (b, n)
        rows = np.arange(start, min(start + block_rows, n))
        dots[rows - start, rows] = -k  # ignore each row's distance to itself
        best = min(best, int((k - dots.max()) // 2))
    return best


def expected_hamming_distance(n_bits: int, p: Any = 0.5) -> Any:
    """``E[D] = 2K p (1 - p)``: expected Hamming distance of two independent random codes.

    Each bit is ``+1`` with probability ``p`` independently; two bits differ with
    probability ``p(1-p) + (1-p)p = 2p(1-p)``, and the ``K`` bits add up. Maximal
    (``K/2``) at ``p = 0.5``.

    Args:
        n_bits: ``K``.
        p: probability of ``+1``, a float or an array of floats in ``[0, 1]``.

    Returns:
        ``float`` for a float ``p``, numpy array for an array ``p``.
    """
    arr = np.asarray(as_numpy(p), dtype=np.float64)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"p must lie in [0, 1]; got {p}.")
    out = 2.0 * int(n_bits) * arr * (1.0 - arr)
    return float(out) if out.ndim == 0 else out
