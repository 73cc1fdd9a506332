r"""What every hashing loss of the course shares: label formats and pair similarity, input
checks, and the :class:`HashingLoss` base. The losses themselves live with their methods
(:mod:`hashlib_edu.methods.dsh`, :mod:`~hashlib_edu.methods.dpah`,
:mod:`~hashlib_edu.methods.orthohash`).

Every loss is a ``torch.nn.Module`` called as ``loss(outputs, labels)``:

* ``outputs``: ``(n, K)`` real network outputs, **before** any squashing (each loss
  applies its own ``sigmoid``/``tanh``/normalization inside);
* ``labels``: ``(n,)`` integer class ids or ``(n, C)`` multi-hot rows (values in ``{0, 1}``,
  one column per class); two items are *similar* when they share at least one label (for
  class ids: the same class) -- every loss goes through :func:`similarity_matrix` /
  :func:`to_multi_hot`, so this rule lives in one place;
* result: a scalar tensor (mean over the batch, or over the batch's pairs for DSH).

Binary codes are ``sign(outputs)`` (``sign(0) = +1``) for **every** loss of the course:
``sigmoid(x) >= 0.5``, ``tanh(x) >= 0`` and the cosine to ``+-1`` targets all agree with the
sign of the raw output. Each loss states it as ``loss.threshold`` (0.0) and offers
``loss.codes(outputs)``; feed the threshold to :func:`hashlib_edu.training.encode`.

Equations are written in plain-text LaTeX; ``b`` is an output row, ``K`` the number of bits,
``C`` the number of classes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .codes import sign

__all__ = ["as_label_tensor", "labels_checked", "to_multi_hot", "similarity_matrix", "check_outputs",
           "check_label_count", "check_positive", "check_sizes", "HashingLoss",
           "pairwise_squared_distances", "dsh_regularizer"]

# --------------------------------------------------------------------------- labels

#: Set inside :func:`labels_checked`: the values of every label were checked once already.
_LABEL_VALUES_CHECKED = False


@contextlib.contextmanager
def labels_checked() -> Iterator[None]:
    """Inside this block the losses skip their per-batch checks of label *values* (class ids in
    range, multi-hot rows of 0 and 1) -- each such check reads a number back from the device,
    which stalls a GPU every step. ``fit`` enters it after checking all of a loader's labels
    once (:meth:`HashingLoss.check_labels`); shapes and dtypes are still checked per batch."""
    global _LABEL_VALUES_CHECKED
    before, _LABEL_VALUES_CHECKED = _LABEL_VALUES_CHECKED, True
    try:
        yield
    finally:
        _LABEL_VALUES_CHECKED = before


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
    if labels.numel() == 0 or _LABEL_VALUES_CHECKED:
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
    if labels.dtype != torch.bool and labels.numel() > 0 and not _LABEL_VALUES_CHECKED:
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


# --------------------------------------------------------------------------- checks


def check_outputs(outputs: Any, n_bits: int | None = None, name: str = "outputs") -> torch.Tensor:
    """Raise a clear error unless ``outputs`` is a non-empty ``(n, n_bits)`` float tensor."""
    if not torch.is_tensor(outputs):
        raise TypeError(f"{name} must be a torch tensor (n, K); got {type(outputs).__name__}.")
    if outputs.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n, K): one row of K real values per item; got shape "
            f"{tuple(outputs.shape)}. Flatten the network output or fix its last layer."
        )
    if not outputs.is_floating_point():
        raise ValueError(f"{name} must be real-valued (float); got dtype {outputs.dtype}.")
    if outputs.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 rows).")
    if n_bits is not None and outputs.shape[1] != n_bits:
        raise ValueError(
            f"{name} have {outputs.shape[1]} columns but the loss was built for n_bits={n_bits}; "
            "the network's last layer must output n_bits values per item."
        )
    return outputs


def check_positive(value: float, name: str, allow_zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value}.")
    return value


def check_sizes(n_bits: int, n_classes: int | None = None) -> tuple[int, int | None]:
    """``(int(n_bits), int(n_classes))`` (``n_classes`` stays ``None`` when not given),
    checked: at least one bit and two classes."""
    bits, classes = int(n_bits), None if n_classes is None else int(n_classes)
    if bits < 1 or (classes is not None and classes < 2):
        need = "n_bits >= 1" + ("" if classes is None else " and n_classes >= 2")
        got = f"n_bits={n_bits}" + ("" if classes is None else f", n_classes={n_classes}")
        raise ValueError(f"need {need}; got {got}.")
    return bits, classes


class HashingLoss(nn.Module):
    """Base of the course's hashing losses: ``loss(outputs, labels)`` plus how its outputs
    become binary codes, ``sign(outputs - threshold)`` (``threshold = 0.0`` unless a loss
    works on values in ``(0, 1)``, then 0.5)."""

    threshold = 0.0
    #: number of classes ``C`` when the loss knows it (class targets, anchors), else ``None``
    n_classes: int | None = None

    def check_labels(self, labels: Any) -> None:
        """Check every label this loss will see, once (e.g. a whole training set): class ids
        in ``0..C-1`` or multi-hot rows of 0 and 1 (see :func:`to_multi_hot`)."""
        to_multi_hot(labels, self.n_classes)

    def codes(self, outputs: torch.Tensor) -> np.ndarray:
        """``(n, K)`` int8 codes in ``{-1, +1}``: ``sign(outputs - self.threshold)``."""
        return sign(outputs.detach() - self.threshold)


def check_label_count(labels: Any, n: int) -> torch.Tensor:
    # full validation happens in similarity_matrix / to_multi_hot; this gives the count message
    labels = as_label_tensor(labels)
    length = labels.shape[0]
    if length != n:
        raise ValueError(
            f"got {length} labels for {n} outputs; pass one label (or one multi-hot row) per "
            "output row."
        )
    return labels


def pairwise_squared_distances(x: torch.Tensor) -> torch.Tensor:
    r"""Squared Euclidean distances ``D[i, j] = ||x_i - x_j||_2^2`` of the rows of ``x``.

    Computed as ``||x_i||^2 + ||x_j||^2 - 2 x_i^T x_j`` (clamped at 0), i.e. only
    ``(n, n)`` intermediates - no ``(n, n, K)`` difference tensor.

    Args:
        x: ``(n, K)``.

    Returns:
        ``(n, n)`` tensor, zero diagonal up to rounding.
    """
    sq = (x * x).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min(0.0)


def dsh_regularizer(outputs: torch.Tensor) -> torch.Tensor:
    r"""DSH's per-item regularizer (also DPAH's quantization term) ``r_i = || |b_i| - 1 ||_1 = \sum_k | |b_{ik}| - 1 |``.

    Zero exactly when every output is ``+1`` or ``-1``; its (sub)gradient moves each
    value towards the nearer of ``+-1``.

    Args:
        outputs: ``(n, K)``.

    Returns:
        ``(n,)``.
    """
    return (outputs.abs() - 1.0).abs().sum(dim=1)
