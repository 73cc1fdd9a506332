"""Exact Hamming search over binary codes (:class:`HammingIndex`) and one query's ranked
list as a user would see it (:func:`retrieve`).

Brute force over packed codes, which is what hashing is for: one XOR and one popcount per
64 bits compare two codes, so scanning 59,000 codes takes well under a millisecond per query.

Two backends give identical results:

* ``"numpy"``: XOR + ``np.bitwise_count`` (numpy >= 2; a byte lookup table on older numpy),
  then a radix ``argsort`` of the small-integer distances.
* ``"faiss"``: ``faiss.IndexBinaryFlat`` (``pip install faiss-cpu``; optional, multi-threaded).
  Its heaps break distance ties by database index, so its top-k equals numpy's (the tests
  check it); range-search results are re-sorted here.

Ordering everywhere: by distance, then by database index (stable ties), indices counting from 0
in the order codes were added.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codes import as_numpy, check_binary
from .hamming import (
    distance_dtype,
    distances_into,
    int_at_least,
    packed_words,
    parse_codes,
    positive_int,
    unpacked_bits,
)

__all__ = ["HammingIndex", "faiss_available", "Retrieval", "retrieve"]

BACKENDS = ("auto", "numpy", "faiss")
_BLOCK_ELEMENTS = 1 << 22  # queries x database codes per block of distances


def faiss_available() -> bool:
    """Whether ``import faiss`` works (``pip install faiss-cpu``)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class HammingIndex:
    """Exact k-nearest-neighbour and radius search in Hamming space.

    Example::

        index = HammingIndex(48)
        index.add(db_codes)                       # (nd, 48) in {-1, +1} / {0, 1}, or packed
        dist, idx = index.search(query_codes, 10) # (nq, 10) int32, (nq, 10) int64
        hits = index.radius_search(query_codes, 2)  # [(dist_i, idx_i) for each query]

    Args:
        n_bits: code length ``k``.
        backend: ``"auto"`` (faiss when installed, else numpy), ``"numpy"`` or ``"faiss"``.

    Codes passed to :meth:`add`, :meth:`search` and :meth:`radius_search` may be ``(n, k)`` in
    ``{-1, +1}`` or ``{0, 1}`` (numpy or torch), or packed ``(n, ceil(k / 8))`` uint8
    (``hashlib_edu.codes.pack_codes``).
    """

    def __init__(self, n_bits: int, backend: str = "auto") -> None:
        self.n_bits = positive_int(n_bits, "n_bits")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
        if backend == "auto":
            backend = "faiss" if faiss_available() else "numpy"
        if backend == "faiss" and not faiss_available():
            raise ImportError(
                "backend='faiss' needs faiss: pip install faiss-cpu (or use backend='numpy')."
            )
        self.backend = backend
        self._chunks: list[np.ndarray] = []  # numpy backend: (n, w) uint64 words per add()
        self._db_cols: np.ndarray | None = None  # (w, ntotal), built lazily
        self._faiss: Any = None
        if backend == "faiss":
            import faiss

            # faiss wants whole bytes; the zero padding bits never differ.
            self._faiss = faiss.IndexBinaryFlat(8 * self._n_bytes)

    @property
    def _n_bytes(self) -> int:
        return (self.n_bits + 7) // 8

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        if self._faiss is not None:
            return int(self._faiss.ntotal)
        return sum(c.shape[0] for c in self._chunks)

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"HammingIndex(n_bits={self.n_bits}, backend={self.backend!r}, ntotal={self.ntotal})"

    def _packed_bytes(self, codes: Any, name: str) -> np.ndarray:
        """``(n, ceil(k/8))`` uint8 with zero padding bits (faiss input)."""
        arr, packed = parse_codes(codes, self.n_bits, name)
        return np.packbits(unpacked_bits(arr, packed, self.n_bits), axis=1)

    def _query_words(self, codes: Any) -> np.ndarray:
        return packed_words(*parse_codes(codes, self.n_bits, "queries"), self.n_bits)

    def add(self, codes: Any) -> None:
        """Append codes; they get the next indices ``ntotal, ntotal + 1, ...``.

        Args:
            codes: ``(n, k)`` in ``{-1, +1}`` / ``{0, 1}``, or packed ``(n, ceil(k/8))`` uint8.
        """
        if self._faiss is not None:
            self._faiss.add(np.ascontiguousarray(self._packed_bytes(codes, "codes")))
            return
        self._chunks.append(packed_words(*parse_codes(codes, self.n_bits, "codes"), self.n_bits))
        self._db_cols = None

    def _columns(self) -> np.ndarray:
        if self._db_cols is None:
            self._db_cols = np.ascontiguousarray(np.concatenate(self._chunks).T)
        return self._db_cols

    def _distance_blocks(self, queries: Any) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, dist)``: ``(b, ntotal)`` distances for blocks of query rows."""
        q_words = self._query_words(queries)
        db_cols = self._columns()
        size = max(1, min(256, _BLOCK_ELEMENTS // db_cols.shape[1]))
        for start in range(0, q_words.shape[0], size):
            rows = slice(start, min(start + size, q_words.shape[0]))
            dist = np.empty((rows.stop - start, db_cols.shape[1]), distance_dtype(self.n_bits))
            yield rows, distances_into(dist, q_words[rows], db_cols)

    def _check_not_empty(self) -> None:
        if self.ntotal == 0:
            raise ValueError("the index is empty; add() database codes before searching.")

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query.

        Args:
            queries: ``(nq, n_bits)`` codes or packed ``(nq, ceil(n_bits/8))`` uint8.
            k: number of neighbours, ``1 <= k <= ntotal``.

        Returns:
            ``(distances, indices)``: ``(nq, k)`` int32 Hamming distances (increasing) and
            ``(nq, k)`` int64 database indices; equal distances in increasing index order
            (stable ties) -- the first ``k`` of ``np.argsort(d, kind="stable")``.
        """
        k = positive_int(k, "k")
        self._check_not_empty()
        if k > self.ntotal:
            raise ValueError(
                f"k={k} exceeds the {self.ntotal} codes in the index; use k <= ntotal."
            )
        if self._faiss is not None:
            dist, idx = self._faiss.search(
                np.ascontiguousarray(self._packed_bytes(queries, "queries")), k
            )
            return dist.astype(np.int32), idx.astype(np.int64)
        dist_out, idx_out = [], []
        for _, dist in self._distance_blocks(queries):
            idx = np.empty((dist.shape[0], k), dtype=np.int64)
            for i in range(dist.shape[0]):
                idx[i] = np.argsort(dist[i], kind="stable")[:k]
            idx_out.append(idx)
            dist_out.append(np.take_along_axis(dist, idx, axis=1).astype(np.int32))
        return np.concatenate(dist_out), np.concatenate(idx_out)

    def radius_search(self, queries: Any, r: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """All codes within Hamming distance ``r`` (inclusive) of each query.

        Args:
            queries: ``(nq, n_bits)`` codes or packed ``(nq, ceil(n_bits/8))`` uint8.
            r: radius ``>= 0``.

        Returns:
            One ``(distances, indices)`` pair per query (the same order as :meth:`search`):
            int32 and int64 arrays of equal, possibly zero, length, sorted by distance then
            index.
        """
        r = int_at_least(r, "r", 0)
        self._check_not_empty()
        if self._faiss is not None:
            q = np.ascontiguousarray(self._packed_bytes(queries, "queries"))
            lims, dist, idx = self._faiss.range_search(q, r + 1)  # faiss: distance < radius
            out = []
            for i in range(q.shape[0]):
                d_i = dist[lims[i] : lims[i + 1]].astype(np.int32)
                i_i = idx[lims[i] : lims[i + 1]].astype(np.int64)
                order = np.lexsort((i_i, d_i))
                out.append((d_i[order], i_i[order]))
            return out
        out = []
        for _, dist in self._distance_blocks(queries):
            for row in dist:
                hits = np.flatnonzero(row <= r)
                d_hits = row[hits]
                order = np.argsort(d_hits, kind="stable")
                out.append((d_hits[order].astype(np.int32), hits[order]))
        return out


# --------------------------------------------------------------------------- one query's list


@dataclass
class Retrieval:
    """The result list of one query.

    Attributes:
        query: position of the query in the query set.
        indices: ``(m,)`` int64 positions in the database, best first.
        distances: ``(m,)`` int32 Hamming distances, non-decreasing.
        relevant: ``(m,)`` bool, result shares a label with the query (``None`` without labels).
        mode: ``"top_k"`` or ``"radius"``; ``k_or_radius``: its value.
        n_within: for ``"radius"``, how many database items lie in the ball (``indices`` may be
            cut to ``max_results``); for ``"top_k"``, ``len(indices)``.
    """

    query: int
    indices: np.ndarray
    distances: np.ndarray
    relevant: np.ndarray | None
    mode: str
    k_or_radius: int
    n_within: int

    @property
    def precision(self) -> float | None:
        """Fraction of the returned list that is relevant; ``None`` for an empty list or no labels."""
        if self.relevant is None or len(self.relevant) == 0:
            return None
        return float(self.relevant.mean())

    def __len__(self) -> int:
        return len(self.indices)


def _check_position(value: Any, n: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer position; got {value!r}.")
    if not 0 <= int(value) < n:
        raise IndexError(f"{name}={value} is out of range: there are {n} items (0..{n - 1}).")
    return int(value)


def retrieve(query_codes: Any, db_codes: Any, query: int, *, top_k: int | None = 10,
             radius: int | None = None, query_labels: Any = None, db_labels: Any = None,
             max_results: int | None = 100) -> Retrieval:
    """Rank the database for query number ``query`` by Hamming distance.

    Give either ``top_k`` (the ``k`` nearest codes) or ``radius`` (every code within Hamming
    distance ``radius``, inclusive; at most ``max_results`` of them are returned, nearest first).

    Args:
        query_codes: ``(nq, k)`` codes in ``{-1, +1}`` or ``{0, 1}``.
        db_codes: ``(nd, k)`` codes, same bits.
        query: position of the query in ``query_codes``.
        top_k: number of results (ignored when ``radius`` is given).
        radius: Hamming radius ``>= 0``.
        query_labels, db_labels: ``(nq,)``/``(nd,)`` class ids or multi-hot rows; optional,
            needed for ``relevant`` and ``precision``.
        max_results: cap for the radius mode (``None``: no cap).

    Returns:
        a :class:`Retrieval`.
    """
    q, _ = check_binary(query_codes, "query_codes")
    d, _ = check_binary(db_codes, "db_codes")
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"query codes have {q.shape[1]} bits, database codes {d.shape[1]}; "
                         "use codes of the same model.")
    if len(d) == 0:
        raise ValueError("the database is empty.")
    query = _check_position(query, len(q), "query")
    index = HammingIndex(q.shape[1], backend="numpy")  # numpy: ties in database order
    index.add(d)
    if radius is not None:
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ValueError(f"radius must be an integer >= 0; got {radius!r}.")
        dist, order = index.radius_search(q[query:query + 1], int(radius))[0]
        n_within = len(order)
        if max_results is not None:
            dist, order = dist[:max_results], order[:max_results]
        mode, value = "radius", int(radius)
    else:
        if top_k is None or isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) \
                or top_k < 1:
            raise ValueError(f"top_k must be a positive integer (or give radius=); got {top_k!r}.")
        dist, order = index.search(q[query:query + 1], min(int(top_k), len(d)))
        dist, order = dist[0], order[0]
        n_within, mode, value = len(order), "top_k", int(top_k)
    relevant = None
    if (query_labels is None) != (db_labels is None):
        raise ValueError("pass both query_labels and db_labels, or neither.")
    if query_labels is not None:
        ql, dl = as_numpy(query_labels), as_numpy(db_labels)
        if len(ql) != len(q) or len(dl) != len(d):
            raise ValueError(f"{len(ql)} query labels for {len(q)} query codes and {len(dl)} "
                             f"database labels for {len(d)} database codes: one label per code.")
        if ql.ndim == 2:
            relevant = (dl[order] @ ql[query]) > 0
        else:
            relevant = dl[order] == ql[query]
    return Retrieval(query, order.astype(np.int64), dist.astype(np.int32),
                     None if relevant is None else np.asarray(relevant, bool), mode, value,
                     n_within)
