"""Ranking by Euclidean distance on real-valued features (for "is it the signs or the
features?" comparisons, such as CNNBH's Table 3). Pure torch, chunked over queries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .codes import as_numpy

__all__ = ["euclidean_precision_at_n"]


def euclidean_precision_at_n(query_feats, db_feats, query_labels, db_labels,
                             ns: Sequence[int], chunk: int = 256) -> np.ndarray:
    """Mean precision of the ``n`` nearest database items (Euclidean), for each ``n`` in ``ns``.

    Args:
        query_feats: ``(nq, d)`` float features.
        db_feats: ``(nd, d)`` float features.
        query_labels, db_labels: ``(nq,)`` / ``(nd,)`` class ids (relevant = same class).
        ns: list sizes, each in ``1..nd``.

    Returns:
        ``(len(ns),)`` float64 precisions, averaged over queries. Exact distance ties are
        broken by database order (``torch.topk`` on distance, then a stable sort).
    """
    q = torch.as_tensor(as_numpy(query_feats), dtype=torch.float32)
    d = torch.as_tensor(as_numpy(db_feats), dtype=torch.float32)
    ql, dl = (torch.as_tensor(as_numpy(x)) for x in (query_labels, db_labels))
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"features must be (nq, d) and (nd, d); got {tuple(q.shape)}, {tuple(d.shape)}.")
    if len(q) != len(ql) or len(d) != len(dl):
        raise ValueError("each feature row needs one label.")
    ns = [int(n) for n in ns]
    if not ns or min(ns) <= 0 or max(ns) > len(d):
        raise ValueError(f"every n must be in 1..{len(d)}; got {ns}.")
    top = max(ns)
    hits = torch.zeros(len(ns), dtype=torch.float64)
    for s in range(0, len(q), chunk):
        dist = torch.cdist(q[s:s + chunk], d)
        order = torch.argsort(dist, dim=1, stable=True)[:, :top]
        rel = (dl[order] == ql[s:s + chunk, None]).double().cumsum(1)
        hits += torch.stack([rel[:, n - 1].sum() / n for n in ns])
    return (hits / len(q)).numpy()
