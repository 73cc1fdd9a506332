"""The Hamming kernel shared by :mod:`hashlib_edu.metrics` and :mod:`hashlib_edu.index`:
codes checked and turned into 64-bit words, Hamming distances by XOR + popcount
(:func:`hamming_distance`), and the integer checks of their arguments.

Codes are ``(n, k)`` in ``{-1, +1}`` or ``{0, 1}`` (bit ``1 <=> +1``), numpy arrays or torch
tensors, or packed ``(n, ceil(k / 8))`` uint8 (``hashlib_edu.codes.pack_codes``) with the
number of bits given as ``n_bits=k``. Words are ``(n, ceil(k / 64))`` uint64 with the padding
bits zero, so the popcount of ``a XOR b`` summed over words is the Hamming distance.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .codes import as_numpy, check_binary

__all__ = [
    "int_at_least",
    "positive_int",
    "parse_codes",
    "unpacked_bits",
    "packed_words",
    "code_words",
    "distance_dtype",
    "distances_into",
    "hamming_distance",
]

# ---------------------------------------------------------------------------------------------
# Codes -> 64-bit words, and the popcount kernel
# ---------------------------------------------------------------------------------------------

_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount_lut(words: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 by a 256-entry byte table (for numpy < 2, no ``bitwise_count``)."""
    as_bytes = words.reshape(*words.shape, 1).view(np.uint8)  # (..., 8)
    return _POPCOUNT_TABLE[as_bytes].sum(axis=-1, dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Bits set in each element of a uint64 array -> uint8 array of the same shape."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(words)
    return _popcount_lut(words)


def parse_codes(codes: Any, n_bits: int | None, name: str) -> tuple[np.ndarray, bool]:
    """Validate codes; return ``(array, packed)``.

    Unpacked codes come back as given (values in ``{-1, +1}`` or ``{0, 1}``, checked), packed
    codes as ``(n, ceil(n_bits / 8))`` uint8. With ``n_bits`` given, an array with ``n_bits``
    columns is read as unpacked bits and a uint8 array with ``ceil(n_bits / 8)`` columns as
    packed bytes.
    """
    arr = as_numpy(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, k) of codes; got shape {arr.shape}.")
    if n_bits is not None:
        n_bits = positive_int(n_bits, "n_bits")
        width = (n_bits + 7) // 8
        if (
            arr.dtype == np.uint8
            and arr.shape[1] == width
            and (width != n_bits or (arr.size > 0 and int(arr.max()) > 1))
        ):
            return arr, True
        if arr.shape[1] != n_bits:
            raise ValueError(
                f"{name} has {arr.shape[1]} columns, but n_bits={n_bits} needs either "
                f"{n_bits} columns of bits or {width} columns of packed uint8 bytes."
            )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 bits per code; codes must have at least one bit.")
    try:
        arr, _ = check_binary(arr, name)
    except ValueError as err:
        if arr.dtype == np.uint8 and n_bits is None:
            raise ValueError(
                f"{err} If these are packed codes (np.packbits / pack_codes), pass n_bits=."
            ) from None
        raise
    return arr, False


def unpacked_bits(arr: np.ndarray, packed: bool, n_bits: int) -> np.ndarray:
    """Parsed codes -> ``(n, n_bits)`` bool bits (``True <=> +1``)."""
    if packed:
        return np.unpackbits(arr, axis=1, count=n_bits).astype(bool)
    return arr > 0


def packed_words(arr: np.ndarray, packed: bool, n_bits: int) -> np.ndarray:
    """Parsed codes -> ``(n, ceil(n_bits / 64))`` uint64 words (padding bits zero)."""
    packed_bytes = np.packbits(unpacked_bits(arr, packed, n_bits), axis=1)
    n_words = (n_bits + 63) // 64
    padded = np.zeros((packed_bytes.shape[0], 8 * n_words), dtype=np.uint8)
    padded[:, : packed_bytes.shape[1]] = packed_bytes
    return padded.view(np.uint64)


def code_words(
    query_codes: Any, db_codes: Any, n_bits: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate both code sets; return query words ``(nq, w)``, database word columns ``(w, nd)``
    (contiguous per word, for fast row-by-row XOR) and the number of bits ``k``."""
    q, q_packed = parse_codes(query_codes, n_bits, "query_codes")
    d, d_packed = parse_codes(db_codes, n_bits, "db_codes")
    kq = n_bits if q_packed else q.shape[1]
    kd = n_bits if d_packed else d.shape[1]
    if kq != kd:
        raise ValueError(
            f"query codes have {kq} bits but database codes have {kd}; encode both with the "
            "same model / bit length."
        )
    if d.shape[0] == 0:
        raise ValueError("the database is empty (db_codes has 0 rows); add database codes.")
    if q.shape[0] == 0:
        raise ValueError("there are no queries (query_codes has 0 rows).")
    k = int(kq)
    return packed_words(q, q_packed, k), np.ascontiguousarray(packed_words(d, d_packed, k).T), k


def distances_into(out: np.ndarray, q_words: np.ndarray, db_cols: np.ndarray) -> np.ndarray:
    """Hamming distances of each query row to every database item, written into ``out``.

    Args:
        out: ``(b, nd)`` uint8 (k < 256) or uint16 output.
        q_words: ``(b, w)`` uint64 query words.
        db_cols: ``(w, nd)`` uint64 database words, one contiguous row per word.
    """
    tmp = np.empty(db_cols.shape[1], dtype=np.uint64)
    for i in range(q_words.shape[0]):
        for w in range(db_cols.shape[0]):
            np.bitwise_xor(db_cols[w], q_words[i, w], out=tmp)
            if w == 0:
                out[i] = _popcount(tmp)
            else:
                out[i] += _popcount(tmp)
    return out


def distance_dtype(k: int) -> type[np.unsignedinteger]:
    # uint8 keeps 2 * d + 1 (the count key) below 256 for k <= 127; radix argsort either way.
    return np.uint8 if k <= 127 else np.uint16


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def int_at_least(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, else a ValueError naming ``name``."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}; got {value!r}.") from None
    if value < minimum:
        raise ValueError(f"{name} must be {what}; got {value}.")
    return int(value)


def positive_int(value: Any, name: str) -> int:
    return int_at_least(value, name, 1)


def hamming_distance(query_codes: Any, db_codes: Any, *, n_bits: int | None = None) -> np.ndarray:
    """All Hamming distances between query and database codes.

    ``d(b, b') = #{bits that differ} = (k - b . b') / 2`` for codes in ``{-1, +1}``; computed
    here as popcount(XOR) of packed 64-bit words.

    Args:
        query_codes: ``(nq, k)`` in ``{-1, +1}`` or ``{0, 1}`` (numpy or torch), or packed
            ``(nq, ceil(k / 8))`` uint8 with ``n_bits=k``.
        db_codes: ``(nd, k)``, same forms.
        n_bits: number of bits ``k`` when the codes are packed.

    Returns:
        ``(nq, nd)`` int32 matrix of distances in ``0..k`` (4 bytes per pair: for large
        evaluations use the functions of :mod:`hashlib_edu.metrics`, which never build it).
    """
    q_words, db_cols, k = code_words(query_codes, db_codes, n_bits)
    dist = np.empty((q_words.shape[0], db_cols.shape[1]), dtype=distance_dtype(k))
    distances_into(dist, q_words, db_cols)
    return dist.astype(np.int32)
