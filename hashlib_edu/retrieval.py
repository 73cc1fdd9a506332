"""One query against a database of codes: the ranked list a user would see.

:func:`retrieve` is the non-widget core of the retrieval explorer (notebook 07) and of the
"query and its top-10" figures: Hamming ranking (ties by database order, as
:func:`hashlib_edu.metrics.mean_average_precision` with ``ties="stable"``) or a Hamming-ball
lookup, both by :class:`hashlib_edu.index.HammingIndex`, with the relevance of each result
and the precision of the list.

Pure numpy: no networks, no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .codes import as_numpy, check_binary
from .index import HammingIndex

__all__ = ["Retrieval", "retrieve"]


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
