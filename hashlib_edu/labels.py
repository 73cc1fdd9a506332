"""Labels: class ids or multi-hot rows -> checked multi-hot matrices and pair similarity.

Two label formats are accepted everywhere in the course:

* ``(n,)`` integer **class ids** (single-label data such as CIFAR-10);
* ``(n, c)`` **multi-hot** rows with values in ``{0, 1}`` (bool, int or float),
  one column per class (multi-label data such as NUS-WIDE).

Two items are *similar* when they share at least one label (for class ids: the
same class). Every loss in :mod:`hashlib_edu.losses` goes through the two helpers
below, so this rule lives in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["as_label_tensor", "to_multi_hot", "similarity_matrix"]


def as_label_tensor(labels: Any, name: str = "labels") -> torch.Tensor:
    """Return ``labels`` as a torch tensor (numpy arrays and lists are converted).

    Raises:
        ValueError: if ``labels`` is not 1-D (class ids) or 2-D (multi-hot).
    """
    if not torch.is_tensor(labels):
        labels = torch.as_tensor(np.asarray(labels))
    if labels.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be (n,) class ids or (n, c) multi-hot rows; got shape "
            f"{tuple(labels.shape)}."
        )
    return labels


def _check_class_ids(labels: torch.Tensor, n_classes: int | None, name: str) -> None:
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"{name}: 1-D labels are read as class ids and must be integers; got dtype "
            f"{labels.dtype}. Convert them with labels.long(), or pass (n, c) multi-hot rows."
        )
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"{name}: class ids must be >= 0; found {low}.")
    if n_classes is not None and high >= n_classes:
        raise ValueError(
            f"{name}: class id {high} is out of range for n_classes={n_classes} "
            f"(ids must lie in 0..{n_classes - 1}). Check n_classes or the label encoding."
        )


def _check_multi_hot(labels: torch.Tensor, n_classes: int | None, name: str) -> None:
    if n_classes is not None and labels.shape[1] != n_classes:
        raise ValueError(
            f"{name}: multi-hot rows have {labels.shape[1]} columns but n_classes={n_classes}; "
            "they must have one column per class."
        )
    if labels.dtype != torch.bool and labels.numel() > 0:
        ok = (labels == 0) | (labels == 1)
        if not bool(ok.all()):
            raise ValueError(
                f"{name}: multi-hot rows must hold only 0 and 1; found "
                f"{labels[~ok][:3].tolist()}. (Soft or smoothed labels are not labels.)"
            )


def to_multi_hot(
    labels: Any,
    n_classes: int | None = None,
    n_items: int | None = None,
    name: str = "labels",
) -> torch.Tensor:
    """Check labels and return them as a float multi-hot matrix.

    Args:
        labels: ``(n,)`` integer class ids or ``(n, c)`` multi-hot rows in ``{0, 1}``.
        n_classes: number of classes ``C``; class ids must lie in ``0..C-1`` and
            multi-hot rows must have ``C`` columns. ``None``: class ids give
            ``C = max id + 1``; multi-hot rows keep their width.
        n_items: expected ``n`` (the batch size of the outputs the labels go with).
        name: how to call the labels in error messages.

    Returns:
        ``(n, C)`` float32 tensor of 0/1 on the labels' device.

    Raises:
        ValueError: on a wrong shape, a count mismatch, non-integer class ids,
            ids out of range, or multi-hot values other than 0/1.
    """
    labels = as_label_tensor(labels, name)
    if n_items is not None and labels.shape[0] != n_items:
        raise ValueError(
            f"{name}: got {labels.shape[0]} labels for {n_items} outputs; pass one label "
            "(or one multi-hot row) per output row."
        )
    if labels.ndim == 1:
        _check_class_ids(labels, n_classes, name)
        width = n_classes if n_classes is not None else int(labels.max()) + 1 if labels.numel() else 0
        return torch.nn.functional.one_hot(labels.long(), width).float()
    _check_multi_hot(labels, n_classes, name)
    return labels.float()


def similarity_matrix(labels_a: Any, labels_b: Any | None = None) -> torch.Tensor:
    """Pairwise semantic similarity: ``S[i, j] = True`` iff items ``i`` and ``j`` share a label.

    Args:
        labels_a: ``(n,)`` class ids or ``(n, c)`` multi-hot.
        labels_b: ``(m,)`` class ids or ``(m, c)`` multi-hot; ``None`` means ``labels_a``
            (the within-batch ``(n, n)`` matrix, diagonal ``True`` for labelled items).
            Class ids may be mixed with multi-hot rows; they are then one-hot encoded
            with the multi-hot width.

    Returns:
        ``(n, m)`` bool tensor.
    """
    a = as_label_tensor(labels_a, "labels_a")
    b = a if labels_b is None else as_label_tensor(labels_b, "labels_b")
    if b.device != a.device:
        b = b.to(a.device)
    if a.ndim == 1 and b.ndim == 1:
        _check_class_ids(a, None, "labels_a")
        _check_class_ids(b, None, "labels_b")
        return a.long()[:, None] == b.long()[None, :]
    width = a.shape[1] if a.ndim == 2 else b.shape[1]
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] != b.shape[1]:
        raise ValueError(
            f"multi-hot labels disagree on the number of classes: {a.shape[1]} vs {b.shape[1]}."
        )
    ha = to_multi_hot(a, width, name="labels_a")
    hb = to_multi_hot(b, width, name="labels_b")
    return (ha @ hb.T) > 0
