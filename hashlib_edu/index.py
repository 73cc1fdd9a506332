"""Hamming search over binary codes (:class:`HammingIndex`), multi-index hashing in numpy
(:class:`MultiIndexHashing`), recall against an exact search, and one query's ranked list as
a user would see it (:func:`retrieve`).

:class:`HammingIndex` has one interface (``add``, ``search(queries, k)``,
``range_search(queries, radius)``) over four structures:

* ``"flat"`` (exact): a scan of every code, XOR + popcount. One XOR and one popcount per 64
  bits compare two codes, so scanning 59,000 codes takes well under a millisecond per query.
* ``"multi-index"`` (exact): multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in
  Hamming Space with Multi-Index Hashing", CVPR 2012). The code is cut into ``m`` substrings,
  each the key of its own hash table. Two codes within distance ``r`` agree within
  ``floor(r / m)`` bits on at least one substring (pigeonhole), so probing every table at that
  radius and verifying the candidates finds exactly the ball of radius ``r``.
* ``"ivf"`` (approximate): faiss's ``IndexBinaryIVF``, k-means cells, ``nprobe`` cells visited.
* ``"hnsw"`` (approximate): faiss's ``IndexBinaryHNSW``, a navigable small-world graph.

Backends: ``"numpy"`` (flat: XOR + ``np.bitwise_count``, a byte lookup table on older numpy;
multi-index: :class:`MultiIndexHashing`) and ``"faiss"`` (``pip install faiss-cpu``:
``IndexBinaryFlat``, ``IndexBinaryMultiHash``, ``IndexBinaryIVF``, ``IndexBinaryHNSW``). The
exact structures give identical results on both backends (the tests check it).

Ordering everywhere: by distance, then by database index (stable ties), indices counting from 0
in the order codes were added. An approximate structure orders what it found the same way and
pads a short row of :meth:`HammingIndex.search` with index ``-1`` and distance ``n_bits + 1``;
:func:`recall_at_k` and :func:`range_recall` measure what it missed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from math import comb
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

__all__ = ["HammingIndex", "STRUCTURES", "faiss_available", "MultiIndexHashing",
           "substring_sizes", "substring_keys", "buckets_within", "multi_index_probes",
           "recall_at_k", "range_recall", "Retrieval", "retrieve"]

BACKENDS = ("auto", "numpy", "faiss")
#: The structures of :class:`HammingIndex`; the first two are exact.
STRUCTURES = ("flat", "multi-index", "ivf", "hnsw")
_BLOCK_ELEMENTS = 1 << 22  # queries x database codes per block of distances


def faiss_available() -> bool:
    """Whether ``import faiss`` works (``pip install faiss-cpu``)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- multi-index hashing


def substring_sizes(n_bits: int, tables: int) -> list[int]:
    """Bits of each of the ``tables`` substrings a ``n_bits``-bit code is cut into: contiguous,
    sizes differing by at most one (the longer ones first), covering every bit."""
    n_bits, tables = positive_int(n_bits, "n_bits"), positive_int(tables, "tables")
    if tables > n_bits:
        raise ValueError(f"tables={tables} exceeds the {n_bits} bits: each substring needs a bit.")
    base, extra = divmod(n_bits, tables)
    return [base + (j < extra) for j in range(tables)]


def substring_keys(bits: np.ndarray, tables: int) -> np.ndarray:
    """``(n, tables)`` uint64 hash keys: each substring of the ``(n, k)`` 0/1 bits read as a
    binary number, its first bit the most significant."""
    bits = np.asarray(bits, dtype=np.uint64)
    keys, start = np.empty((bits.shape[0], tables), dtype=np.uint64), 0
    for j, size in enumerate(substring_sizes(bits.shape[1], tables)):
        if size > 64:
            raise ValueError(f"a substring of {size} bits does not fit a 64-bit key; use more "
                             "tables.")
        weights = np.uint64(1) << np.arange(size - 1, -1, -1, dtype=np.uint64)
        keys[:, j] = (bits[:, start:start + size] * weights).sum(axis=1, dtype=np.uint64)
        start += size
    return keys


def buckets_within(bits: int, radius: int) -> int:
    """Keys within Hamming distance ``radius`` of a ``bits``-bit key: ``sum_{i<=radius} C(bits, i)``."""
    return sum(comb(bits, i) for i in range(min(radius, bits) + 1))


def multi_index_probes(n_bits: int, tables: int, radius: int) -> int:
    """Hash-table lookups of one radius-``radius`` query in multi-index hashing: every table
    is probed at radius ``floor(radius / tables)`` around the query's substring."""
    per_table = int_at_least(radius, "radius", 0) // tables
    return sum(buckets_within(size, per_table) for size in substring_sizes(n_bits, tables))


class MultiIndexHashing:
    """Exact radius search by multi-index hashing, in a few lines of numpy.

    One "hash table" per substring: the database's keys sorted, so that a bucket (every code
    whose substring equals a key) is the slice ``np.searchsorted`` finds.

    Args:
        n_bits: code length ``k``.
        tables: number of substrings ``m`` (each at most 64 bits).
    """

    def __init__(self, n_bits: int, tables: int) -> None:
        self.n_bits, self.tables = n_bits, tables
        self.sizes = substring_sizes(n_bits, tables)
        self._bits: list[np.ndarray] = []  # (n, k) 0/1 uint8 per add()
        self._words = np.empty((0, (n_bits + 63) // 64), np.uint64)
        self._tables: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._masks: dict[tuple[int, int], np.ndarray] = {}  # (size, radius) -> flip masks

    @property
    def ntotal(self) -> int:
        return self._words.shape[0]

    def add(self, bits: np.ndarray) -> None:
        """Append ``(n, k)`` 0/1 codes."""
        bits = np.asarray(bits, dtype=np.uint8)
        self._bits.append(bits)
        self._words = np.concatenate([self._words, packed_words(bits, False, self.n_bits)])
        self._tables = None

    def _build(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per table: (sorted keys, database indices in that order)."""
        if self._tables is None:
            keys = substring_keys(np.concatenate(self._bits), self.tables)
            self._tables = []
            for j in range(self.tables):
                order = np.argsort(keys[:, j], kind="stable")
                self._tables.append((keys[order, j], order))
        return self._tables

    def flip_masks(self, size: int, radius: int) -> np.ndarray:
        """Every ``size``-bit mask of at most ``radius`` ones: XOR a key with each to probe."""
        if (size, radius) not in self._masks:
            masks = [sum(1 << (size - 1 - b) for b in flips) for i in range(min(radius, size) + 1)
                     for flips in itertools.combinations(range(size), i)]
            self._masks[size, radius] = np.array(masks, dtype=np.uint64)
        return self._masks[size, radius]

    def candidates(self, query_bits: np.ndarray, radius: int) -> np.ndarray:
        """Database indices in the probed buckets of one query (unique, unsorted)."""
        found = []
        q_keys = substring_keys(query_bits[None, :], self.tables)[0]
        for j, (keys, order) in enumerate(self._build()):
            probes = q_keys[j] ^ self.flip_masks(self.sizes[j], radius // self.tables)
            lo = np.searchsorted(keys, probes, side="left")
            hi = np.searchsorted(keys, probes, side="right")
            found += [order[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        return np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)

    def range_search(self, query_bits: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)`` of every code within ``radius`` of one query (``(k,)`` 0/1),
        sorted by distance then index: the candidates, verified by their full distance."""
        cand = self.candidates(query_bits, radius)
        q_words = packed_words(np.asarray(query_bits, np.uint8)[None, :], False, self.n_bits)
        dist = np.empty((1, cand.size), distance_dtype(self.n_bits))
        distances_into(dist, q_words, np.ascontiguousarray(self._words[cand].T))
        dist = dist[0]
        keep = dist <= radius
        order = np.lexsort((cand[keep], dist[keep]))
        return dist[keep][order].astype(np.int32), cand[keep][order].astype(np.int64)


# --------------------------------------------------------------------------- recall


def recall_at_k(distances: Any, exact_distances: Any) -> float:
    """Mean recall@k of an approximate search against the exact one, ties counted as found.

    A returned item counts when its distance is at most the exact ``k``-th distance: with many
    codes at equal distance there are many correct top-``k`` lists, so comparing indices would
    punish an equally near answer. Both arguments are ``(nq, k)`` distances from ``search``.
    """
    found, exact = np.asarray(distances), np.asarray(exact_distances)
    if found.shape != exact.shape or found.ndim != 2:
        raise ValueError(f"expected two (nq, k) arrays of the same shape; got {found.shape} "
                         f"and {exact.shape}.")
    return float((found <= exact[:, -1:]).sum(axis=1).mean() / exact.shape[1])


def range_recall(hits: list, exact_hits: list) -> float:
    """Fraction of the exact balls' items an approximate range search returned (summed over
    queries; 1.0 when every ball is empty). Arguments: the lists of ``(distances, indices)``
    from ``range_search``."""
    if len(hits) != len(exact_hits):
        raise ValueError(f"{len(hits)} result lists for {len(exact_hits)} exact ones.")
    total = sum(len(i) for _, i in exact_hits)
    found = sum(np.intersect1d(i, j).size for (_, i), (_, j) in zip(hits, exact_hits,
                                                                    strict=True))
    return 1.0 if total == 0 else found / total


# --------------------------------------------------------------------------- the index


def _sorted_lists(lims: np.ndarray, dist: np.ndarray, idx: np.ndarray,
                  sort: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """faiss-style range results -> one (int32 distances, int64 indices) pair per query."""
    lims, dist, idx = lims.astype(np.int64), dist.astype(np.int32), idx.astype(np.int64)
    if sort:
        query = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
        order = np.lexsort((idx, dist, query))
        dist, idx = dist[order], idx[order]
    return [(dist[a:b], idx[a:b]) for a, b in zip(lims[:-1], lims[1:], strict=True)]


class HammingIndex:
    """k-nearest-neighbour and radius search in Hamming space, exact or approximate.

    Example::

        index = HammingIndex(48)                      # exact scan ("flat")
        index.add(db_codes)                           # (nd, 48) in {-1, +1} / {0, 1}, or packed
        dist, idx = index.search(query_codes, 10)     # (nq, 10) int32, (nq, 10) int64
        hits = index.range_search(query_codes, 2)     # [(dist_i, idx_i) for each query]
        mih = HammingIndex(48, structure="multi-index", tables=3)  # same results, hash tables

    Args:
        n_bits: code length ``k``.
        backend: ``"auto"`` (faiss when installed, else numpy), ``"numpy"`` or ``"faiss"``.
        structure: one of :data:`STRUCTURES` (``"ivf"`` and ``"hnsw"`` need faiss).
        tables: multi-index: number of substrings ``m`` (default ``max(1, k // 16)``).
        nlist, nprobe: ivf: k-means cells (default ``min(1024, n // 39)`` of the first
            ``add``, on which it is trained) and cells visited per query.
        hnsw_m, ef_search, ef_construction: hnsw: graph degree and search/build beam widths.

    Codes passed to :meth:`add`, :meth:`search` and :meth:`range_search` may be ``(n, k)`` in
    ``{-1, +1}`` or ``{0, 1}`` (numpy or torch), or packed ``(n, ceil(k / 8))`` uint8
    (``hashlib_edu.codes.pack_codes``).
    """

    def __init__(self, n_bits: int, backend: str = "auto", structure: str = "flat", *,
                 tables: int | None = None, nlist: int | None = None, nprobe: int = 8,
                 hnsw_m: int = 16, ef_search: int = 64, ef_construction: int = 40) -> None:
        self.n_bits = positive_int(n_bits, "n_bits")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}; got {structure!r}.")
        if backend == "auto":
            backend = "faiss" if faiss_available() else "numpy"
        if backend == "faiss" and not faiss_available():
            raise ImportError(
                "backend='faiss' needs faiss: pip install faiss-cpu (or use backend='numpy')."
            )
        if backend == "numpy" and structure in ("ivf", "hnsw"):
            raise ValueError(f"structure={structure!r} needs faiss (pip install faiss-cpu) and "
                             "backend='faiss' or 'auto'.")
        self.backend, self.structure = backend, structure
        self.tables = positive_int(tables or max(1, self.n_bits // 16), "tables")
        substring_sizes(self.n_bits, self.tables)  # checks tables <= n_bits
        self.nlist, self.nprobe = nlist, positive_int(nprobe, "nprobe")
        self.hnsw_m, self.ef_search, self.ef_construction = hnsw_m, ef_search, ef_construction
        self._chunks: list[np.ndarray] = []  # numpy flat: (n, w) uint64 words per add()
        self._db_cols: np.ndarray | None = None  # (w, ntotal), built lazily
        self._mih = MultiIndexHashing(self.n_bits, self.tables) if (
            backend == "numpy" and structure == "multi-index") else None
        self._faiss: Any = self._new_faiss() if backend == "faiss" else None

    @property
    def exact(self) -> bool:
        """Whether results equal the flat scan's (``"flat"``, ``"multi-index"``)."""
        return self.structure in ("flat", "multi-index")

    @property
    def _n_bytes(self) -> int:
        return (self.n_bits + 7) // 8

    def _new_faiss(self) -> Any:
        import faiss

        d = 8 * self._n_bytes  # faiss wants whole bytes; the zero padding bits never differ
        if self.structure == "flat":
            return faiss.IndexBinaryFlat(d)
        if self.structure == "multi-index":
            return faiss.IndexBinaryMultiHash(d, self.tables, d // self.tables)
        if self.structure == "hnsw":
            index = faiss.IndexBinaryHNSW(d, self.hnsw_m)
            index.hnsw.efConstruction = self.ef_construction
            return index
        return None  # ivf: made when the first codes arrive (its cells are trained on them)

    def _train_ivf(self, codes: np.ndarray) -> None:
        import faiss

        d = 8 * self._n_bytes
        nlist = self.nlist or max(1, min(1024, codes.shape[0] // 39))
        self._quantizer = faiss.IndexBinaryFlat(d)  # the IVF keeps a pointer: keep it alive
        self._faiss = faiss.IndexBinaryIVF(self._quantizer, d, nlist)
        self._faiss.train(codes)
        self.nlist = nlist

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        if self._faiss is not None:
            return int(self._faiss.ntotal)
        if self._mih is not None:
            return self._mih.ntotal
        return sum(c.shape[0] for c in self._chunks)

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        shape = "" if self.structure == "flat" else f", structure={self.structure!r}"
        return (f"HammingIndex(n_bits={self.n_bits}, backend={self.backend!r}{shape}, "
                f"ntotal={self.ntotal})")

    def _packed_bytes(self, codes: Any, name: str) -> np.ndarray:
        """``(n, ceil(k/8))`` uint8 with zero padding bits (faiss input)."""
        arr, packed = parse_codes(codes, self.n_bits, name)
        return np.ascontiguousarray(np.packbits(unpacked_bits(arr, packed, self.n_bits), axis=1))

    def _bits(self, codes: Any, name: str) -> np.ndarray:
        return unpacked_bits(*parse_codes(codes, self.n_bits, name), self.n_bits).astype(np.uint8)

    def add(self, codes: Any) -> None:
        """Append codes; they get the next indices ``ntotal, ntotal + 1, ...``.

        Args:
            codes: ``(n, k)`` in ``{-1, +1}`` / ``{0, 1}``, or packed ``(n, ceil(k/8))`` uint8.
        """
        if self.backend == "faiss":
            packed = self._packed_bytes(codes, "codes")
            if self.structure == "ivf" and self._faiss is None:
                self._train_ivf(packed)
            self._faiss.add(packed)
        elif self._mih is not None:
            self._mih.add(self._bits(codes, "codes"))
        else:
            self._chunks.append(packed_words(*parse_codes(codes, self.n_bits, "codes"),
                                             self.n_bits))
            self._db_cols = None

    def _columns(self) -> np.ndarray:
        if self._db_cols is None:
            self._db_cols = np.ascontiguousarray(np.concatenate(self._chunks).T)
        return self._db_cols

    def _distance_blocks(self, queries: Any) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, dist)``: ``(b, ntotal)`` distances for blocks of query rows."""
        q_words = packed_words(*parse_codes(queries, self.n_bits, "queries"), self.n_bits)
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
            (stable ties) -- for the exact structures the first ``k`` of
            ``np.argsort(d, kind="stable")``; the multi-index search grows the radius from 0
            until the ball holds ``k`` codes.
        """
        k = positive_int(k, "k")
        self._check_not_empty()
        if k > self.ntotal:
            raise ValueError(
                f"k={k} exceeds the {self.ntotal} codes in the index; use k <= ntotal."
            )
        if self.structure == "multi-index":
            return self._search_by_radius(queries, k)
        if self._faiss is not None:
            q = self._packed_bytes(queries, "queries")
            if self.structure == "ivf":
                self._faiss.nprobe = min(self.nprobe, self.nlist)
            if self.structure == "hnsw":
                self._faiss.hnsw.efSearch = max(self.ef_search, k)
            dist, idx = self._faiss.search(q, k)
            return self._tidy(dist, idx) if not self.exact else (dist.astype(np.int32),
                                                                  idx.astype(np.int64))
        dist_out, idx_out = [], []
        for _, dist in self._distance_blocks(queries):
            idx = np.empty((dist.shape[0], k), dtype=np.int64)
            for i in range(dist.shape[0]):
                idx[i] = np.argsort(dist[i], kind="stable")[:k]
            idx_out.append(idx)
            dist_out.append(np.take_along_axis(dist, idx, axis=1).astype(np.int32))
        return np.concatenate(dist_out), np.concatenate(idx_out)

    def _tidy(self, dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An approximate search's rows: missing results as (n_bits + 1, -1), rows sorted by
        distance then index."""
        missing = idx < 0
        dist = np.where(missing, self.n_bits + 1, dist).astype(np.int64)
        key = dist * (self.ntotal + 1) + np.where(missing, self.ntotal, idx)
        order = np.argsort(key, axis=1, kind="stable")
        return (np.take_along_axis(dist, order, 1).astype(np.int32),
                np.take_along_axis(np.where(missing, -1, idx), order, 1).astype(np.int64))

    def _search_by_radius(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        bits = self._bits(queries, "queries")
        dist = np.empty((len(bits), k), np.int32)
        idx = np.empty((len(bits), k), np.int64)
        pending, radius = np.arange(len(bits)), 0
        while pending.size:  # the queries whose ball of this radius holds < k codes
            hits = self._range(bits[pending], radius, sort=True)
            done = np.array([len(d) >= k for d, _ in hits], dtype=bool)
            for row, (d, i), ok in zip(pending, hits, done, strict=True):
                if ok:
                    dist[row], idx[row] = d[:k], i[:k]
            pending, radius = pending[~done], radius + 1
        return dist, idx

    def range_search(self, queries: Any, radius: int, *,
                     sort: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
        """All codes within Hamming distance ``radius`` (inclusive) of each query.

        Exact for ``"flat"`` and ``"multi-index"`` (the same items); ``"ivf"`` returns the ball's
        items in the cells it visits, ``"hnsw"`` (faiss has no graph range search) the ones among
        its approximate nearest neighbours, asking for twice as many until the last one lies
        outside the ball.

        Args:
            queries: ``(nq, n_bits)`` codes or packed ``(nq, ceil(n_bits/8))`` uint8.
            radius: ``>= 0``.
            sort: ``False`` skips sorting each list (faster; the same items in another order).

        Returns:
            One ``(distances, indices)`` pair per query: int32 and int64 arrays of equal,
            possibly zero, length, sorted by distance then index.
        """
        return self._range(queries, int_at_least(radius, "radius", 0), sort=sort)

    def radius_search(self, queries: Any, r: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`range_search` (its older name)."""
        return self._range(queries, int_at_least(r, "r", 0), sort=True)

    def _range(self, queries: Any, r: int, sort: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        self._check_not_empty()
        if self._mih is not None:
            return [self._mih.range_search(q, r) for q in self._bits(queries, "queries")]
        if self.structure == "hnsw":
            return self._hnsw_range(queries, r)
        if self._faiss is not None:
            q = self._packed_bytes(queries, "queries")
            if self.structure == "multi-index":
                self._faiss.nflip = r // self.tables  # pigeonhole: one substring within r // m
            if self.structure == "ivf":
                self._faiss.nprobe = min(self.nprobe, self.nlist)
            lims, dist, idx = self._faiss.range_search(q, r + 1)  # faiss: distance < radius
            return _sorted_lists(lims, dist, idx, sort)
        out = []
        for _, dist in self._distance_blocks(queries):
            for row in dist:
                hits = np.flatnonzero(row <= r)
                d_hits = row[hits]
                order = np.argsort(d_hits, kind="stable")
                out.append((d_hits[order].astype(np.int32), hits[order]))
        return out

    def _hnsw_range(self, queries: Any, r: int) -> list[tuple[np.ndarray, np.ndarray]]:
        q = self._packed_bytes(queries, "queries")
        out: list = [None] * len(q)
        pending, k = np.arange(len(q)), min(64, self.ntotal)
        while pending.size:
            dist, idx = self.search(q[pending], k)
            full = (dist[:, -1] <= r) & (k < self.ntotal)
            for row, d, i in zip(pending[~full], dist[~full], idx[~full], strict=True):
                keep = (d <= r) & (i >= 0)
                out[row] = (d[keep], i[keep])
            pending, k = pending[full], min(2 * k, self.ntotal)
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
