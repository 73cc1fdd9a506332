"""Binary codes: signs, {-1,+1} <-> {0,1}, and bit packing.

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

This module is pure numpy/torch: no models, no files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "concatenate_codes",
    "as_numpy",
    "sign",
    "to_pm1",
    "to_bits",
    "pack_codes",
    "unpack_codes",
    "check_binary",
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
