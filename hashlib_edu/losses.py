r"""Training losses of the course's hashing methods: DSH, DPAH and OrthoHash.

Every loss is a ``torch.nn.Module`` called as ``loss(outputs, labels)``:

* ``outputs``: ``(n, K)`` real network outputs, **before** any squashing (each loss
  applies its own ``sigmoid``/``tanh``/normalization inside);
* ``labels``: ``(n,)`` integer class ids or ``(n, C)`` multi-hot rows
  (see :mod:`hashlib_edu.labels`; two items are similar when they share a label);
* result: a scalar tensor (mean over the batch, or over the batch's pairs for DSH).

Binary codes are ``sign(outputs)`` (``sign(0) = +1``) for **every** loss here:
``sigmoid(x) >= 0.5``, ``tanh(x) >= 0`` and the cosine to ``+-1`` targets all
agree with the sign of the raw output. Each module states it as
``loss.threshold`` (0.0) and offers ``loss.codes(outputs)``; feed the threshold
to :func:`hashlib_edu.training.encode`.

Equations are written in plain-text LaTeX; ``b`` is an output row, ``K`` the
number of bits, ``C`` the number of classes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hashlib_edu.codes import sign
from hashlib_edu.labels import as_label_tensor, similarity_matrix, to_multi_hot
from hashlib_edu.targets import TARGET_NAMES, make_targets

__all__ = [
    "HashingLoss",
    "pairwise_squared_distances",
    "dsh_regularizer",
    "dsh_loss",
    "dsh_sigmoid_loss",
    "DSHLoss",
    "DSHSigmoidLoss",
    "relaxed_hamming_distance",
    "dpah_inter_hinge",
    "dpah_inter_bound",
    "DPAHLoss",
    "OrthoHashLoss",
]


# --------------------------------------------------------------------------- checks


def _check_outputs(outputs: Any, n_bits: int | None = None, name: str = "outputs") -> torch.Tensor:
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


def _positive(value: float, name: str, allow_zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value}.")
    return value


def _sizes(n_bits: int, n_classes: int | None = None) -> tuple[int, int | None]:
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

    def codes(self, outputs: torch.Tensor) -> np.ndarray:
        """``(n, K)`` int8 codes in ``{-1, +1}``: ``sign(outputs - self.threshold)``."""
        return sign(outputs.detach() - self.threshold)


# --------------------------------------------------------------------------- DSH


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


def _contrastive_pair_mean(x: torch.Tensor, labels: Any, margin: float) -> torch.Tensor:
    """Mean over unordered pairs ``i < j`` of DSH's contrastive term (shared by both variants)."""
    n = x.shape[0]
    if n < 2:
        raise ValueError("DSH needs at least 2 items in a batch to form a pair.")
    labels = _check_label_count(labels, n)
    similar = similarity_matrix(labels).to(x.device)  # (n, n) bool, y = 0 <=> similar
    d2 = pairwise_squared_distances(x)
    per_pair = torch.where(similar, 0.5 * d2, 0.5 * F.relu(margin - d2))
    upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(diagonal=1)
    return per_pair[upper].mean()


def _check_label_count(labels: Any, n: int) -> torch.Tensor:
    # full validation happens in similarity_matrix / to_multi_hot; this gives the count message
    labels = as_label_tensor(labels)
    length = labels.shape[0]
    if length != n:
        raise ValueError(
            f"got {length} labels for {n} outputs; pass one label (or one multi-hot row) per "
            "output row."
        )
    return labels


def dsh_regularizer(outputs: torch.Tensor) -> torch.Tensor:
    r"""DSH's per-item regularizer ``r_i = || |b_i| - 1 ||_1 = \sum_k | |b_{ik}| - 1 |``.

    Zero exactly when every output is ``+1`` or ``-1``; its (sub)gradient moves each
    value towards the nearer of ``+-1``.

    Args:
        outputs: ``(n, K)``.

    Returns:
        ``(n,)``.
    """
    return (outputs.abs() - 1.0).abs().sum(dim=1)


def dsh_loss(
    outputs: torch.Tensor,
    labels: Any,
    alpha: float = 0.01,
    margin: float | None = None,
) -> torch.Tensor:
    r"""Deep Supervised Hashing loss (Liu et al., CVPR 2016), mean over the batch's pairs.

    For a pair of outputs ``b_1, b_2`` with ``y = 0`` if they are similar (share a
    label) and ``y = 1`` otherwise:

        L(b_1, b_2, y) = \frac12 (1 - y) ||b_1 - b_2||_2^2
                       + \frac12 y \max(m - ||b_1 - b_2||_2^2, 0)
                       + \alpha (|| |b_1| - 1 ||_1 + || |b_2| - 1 ||_1)

    * similar pairs are pulled together;
    * dissimilar pairs are pushed apart only while their squared distance is below
      the margin ``m`` - beyond it they cost nothing, so codes are not pushed to infinity;
    * the ``alpha`` term pulls every output towards ``+-1`` so that ``sign()`` loses little
      (the relaxation replaces the binary constraint by this regularizer).

    The batch loss is the mean of ``L`` over all ``P = n(n-1)/2`` unordered pairs
    ``i < j``. Each item appears in ``n - 1`` pairs, so the regularizer part of that
    mean is ``\frac{1}{P} \sum_{i<j} \alpha (r_i + r_j) = \frac{(n-1)\alpha}{P} \sum_i r_i
    = 2\alpha \cdot mean_i r_i`` with ``r_i = || |b_i| - 1 ||_1``; it is computed that
    way, without materializing pairs (only ``(n, n)`` distance matrices).

    Args:
        outputs: ``(n, K)`` real outputs (no squashing), ``n >= 2``.
        labels: ``(n,)`` class ids or ``(n, C)`` multi-hot.
        alpha: regularizer weight ``alpha`` (paper's default 0.01; swept over
            0, 0.001, 0.01, 0.1 in the supplementary).
        margin: ``m``; ``None`` means ``2K`` (the paper's choice).

    Returns:
        scalar tensor.
    """
    outputs = _check_outputs(outputs)
    alpha = _positive(alpha, "alpha", allow_zero=True)
    m = 2.0 * outputs.shape[1] if margin is None else _positive(margin, "margin")
    contrastive = _contrastive_pair_mean(outputs, labels, m)
    return contrastive + 2.0 * alpha * dsh_regularizer(outputs).mean()


def dsh_sigmoid_loss(
    outputs: torch.Tensor,
    labels: Any,
    margin: float = 2.0,
    apply_sigmoid: bool = True,
) -> torch.Tensor:
    r"""DSH's *sigmoid relaxation* baseline (supplementary, Table 1 and Fig. 1 (e)-(h)).

    Outputs are squashed to ``u = sigmoid(b)`` in ``(0, 1)``, and the contrastive term
    of :func:`dsh_loss` is applied to ``u`` with no regularizer:

        L(u_1, u_2, y) = \frac12 (1 - y) ||u_1 - u_2||_2^2 + \frac12 y \max(m - ||u_1 - u_2||_2^2, 0)

    mean over the unordered pairs. Codes are ``u >= 0.5``, i.e. ``sign(b)``. Since
    ``||u_1 - u_2||^2 < K``, the margin must be below ``K``; the supplementary tries
    ``m in {1, 2, 3, 6}`` at ``K = 12``.

    Args:
        outputs: ``(n, K)`` raw outputs (``apply_sigmoid=True``) or already-squashed
            values in ``[0, 1]`` (``apply_sigmoid=False``), ``n >= 2``.
        labels: ``(n,)`` class ids or ``(n, C)`` multi-hot.
        margin: ``m`` (default 2).
        apply_sigmoid: squash inside the loss (default) or take ``outputs`` as ``u``.

    Returns:
        scalar tensor.
    """
    outputs = _check_outputs(outputs)
    margin = _positive(margin, "margin")
    if apply_sigmoid:
        u = torch.sigmoid(outputs)
    else:
        if bool(((outputs < 0) | (outputs > 1)).any()):
            raise ValueError(
                "dsh_sigmoid_loss(apply_sigmoid=False) expects outputs in [0, 1]; pass raw "
                "outputs with apply_sigmoid=True instead."
            )
        u = outputs
    return _contrastive_pair_mean(u, labels, margin)


class DSHLoss(HashingLoss):
    r"""DSH loss with the ``alpha`` regularizer; see :func:`dsh_loss` for the equation.

    ``L = mean_{i<j} [ \frac12 (1-y_{ij}) D_{ij} + \frac12 y_{ij} \max(m - D_{ij}, 0) ]
    + 2\alpha mean_i || |b_i| - 1 ||_1`` with ``D_{ij} = ||b_i - b_j||^2``.

    Args:
        n_bits: ``K``, width of the outputs.
        alpha: regularizer weight (paper: 0.01).
        margin: ``m``; ``None`` -> ``2K`` (paper).

    Shape:
        - outputs: ``(n, K)`` real, ``n >= 2``; labels: ``(n,)`` or ``(n, C)``.
        - result: scalar.

    Codes: ``sign(outputs)`` (``self.threshold = 0.0``).
    """

    def __init__(self, n_bits: int, alpha: float = 0.01, margin: float | None = None) -> None:
        super().__init__()
        self.n_bits = _sizes(n_bits)[0]
        self.alpha = _positive(alpha, "alpha", allow_zero=True)
        self.margin = 2.0 * self.n_bits if margin is None else _positive(margin, "margin")

    def forward(self, outputs: torch.Tensor, labels: Any) -> torch.Tensor:
        _check_outputs(outputs, self.n_bits)
        return dsh_loss(outputs, labels, alpha=self.alpha, margin=self.margin)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, alpha={self.alpha}, margin={self.margin}"


class DSHSigmoidLoss(HashingLoss):
    r"""DSH's sigmoid-relaxation baseline; see :func:`dsh_sigmoid_loss` for the equation.

    Args:
        n_bits: ``K``.
        margin: ``m`` on squared distances between sigmoid outputs (default 2; the
            supplementary uses 1, 2, 3, 6 at 12 bits); must be below ``K``.
        apply_sigmoid: if ``True`` (default) the network's raw outputs are passed and
            squashed here; then codes are ``sign(outputs)`` (``threshold = 0.0``). With
            ``False`` the network ends in a sigmoid, and codes are ``sign(outputs - 0.5)``
            (``threshold = 0.5``).

    Shape:
        - outputs: ``(n, K)``, ``n >= 2``; labels: ``(n,)`` or ``(n, C)``.
        - result: scalar.
    """

    def __init__(self, n_bits: int, margin: float = 2.0, apply_sigmoid: bool = True) -> None:
        super().__init__()
        self.n_bits = _sizes(n_bits)[0]
        self.margin = _positive(margin, "margin")
        if self.margin >= self.n_bits:
            raise ValueError(
                f"margin={margin} can never be reached: squared distances between sigmoid "
                f"outputs of {self.n_bits} bits stay below {self.n_bits}. Use a smaller margin."
            )
        self.apply_sigmoid = bool(apply_sigmoid)
        self.threshold = 0.0 if self.apply_sigmoid else 0.5

    def squash(self, outputs: torch.Tensor) -> torch.Tensor:
        """The values the loss compares, ``u`` in ``(0, 1)`` (for histograms, as Fig. 1 (e)-(h))."""
        return torch.sigmoid(outputs) if self.apply_sigmoid else outputs

    def forward(self, outputs: torch.Tensor, labels: Any) -> torch.Tensor:
        _check_outputs(outputs, self.n_bits)
        return dsh_sigmoid_loss(outputs, labels, self.margin, apply_sigmoid=self.apply_sigmoid)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, margin={self.margin}, apply_sigmoid={self.apply_sigmoid}"


# --------------------------------------------------------------------------- DPAH


def relaxed_hamming_distance(b: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    r"""``d(b, \theta) = (K - b^T \theta) / 2`` for every row of ``b`` and every row of ``theta``.

    For ``b, \theta in {-1, +1}^K`` this is exactly the Hamming distance; for values in
    ``[-1, 1]`` it is a smooth relaxation in ``[0, K]``.

    Args:
        b: ``(n, K)``.
        theta: ``(C, K)``.

    Returns:
        ``(n, C)``.
    """
    return 0.5 * (b.shape[1] - b @ theta.T)


def _negatives(d_own: torch.Tensor, d_neg: torch.Tensor, neg_mask: torch.Tensor | None):
    if d_own.ndim != 1 or d_neg.ndim != 2 or d_neg.shape[0] != d_own.shape[0]:
        raise ValueError(
            f"d_own must be (n,) and d_neg (n, M); got {tuple(d_own.shape)} and "
            f"{tuple(d_neg.shape)}."
        )
    if neg_mask is None:
        return d_neg
    if neg_mask.shape != d_neg.shape:
        raise ValueError(f"neg_mask must have d_neg's shape {tuple(d_neg.shape)}.")
    return d_neg.masked_fill(~neg_mask.bool(), math.inf)  # non-negatives never count


def dpah_inter_hinge(
    d_own: torch.Tensor,
    d_neg: torch.Tensor,
    alpha: float,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""DPAH's inter-class hinge (appendix, Eq. 1), one value per sample.

        L^i_{hinge} = \max\{ (1 + \alpha) d(b_i, \bar\theta_i) - \min_{j \notin labels(i)} d(b_i, \theta_j),\ 0 \}

    Zero once the sample is closer to its own anchor, by the factor ``1 + alpha``, than
    to any other class's anchor. Samples without negatives give 0.

    Args:
        d_own: ``(n,)`` distances to the own anchor ``d(b_i, \bar\theta_i)``.
        d_neg: ``(n, M)`` distances to candidate anchors (e.g. all ``C`` anchors).
        alpha: relative margin ``alpha >= 0``.
        neg_mask: ``(n, M)`` bool, ``True`` where column ``j`` is a negative for sample
            ``i`` (``j \notin labels(i)``); ``None`` = every column is a negative.

    Returns:
        ``(n,)``.
    """
    d_neg = _negatives(d_own, d_neg, neg_mask)
    return F.relu((1.0 + alpha) * d_own - d_neg.min(dim=1).values)


def dpah_inter_bound(
    d_own: torch.Tensor,
    d_neg: torch.Tensor,
    alpha: float,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""DPAH's smooth upper bound of :func:`dpah_inter_hinge` (appendix, Eq. 2), per sample.

        L^i_{inter} = -\log \frac{e^{-(1+\alpha) d_{own}}}{e^{-(1+\alpha) d_{own}} + \sum_{j \in N_i} e^{-d_j}}
                    = \log(1 + e^{(1+\alpha) d_{own}} \sum_{j \in N_i} e^{-d_j})

    with ``d_own = d(b_i, \bar\theta_i)``, ``d_j = d(b_i, \theta_j)`` and
    ``N_i = \{j \notin labels(i)\}``: a softmax cross-entropy whose logits are negative
    distances, the own one stretched by ``1 + alpha``.

    Derivation (the appendix's middle lines are garbled; with ``a = (1+\alpha) d_{own}``):

        L^i_{hinge} = \max\{ a - \min_j d_j, 0 \} = \max\{ a + \max_j (-d_j), 0 \}
          (1) \max_j z_j \le \log \sum_j e^{z_j}        (the sum contains e^{\max_j z_j})
              => L^i_{hinge} \le \max\{ a + \log \sum_j e^{-d_j}, 0 \} = \max\{x, 0\},
                 x = \log( e^{a} \sum_j e^{-d_j} )      (\max\{\cdot, 0\} is non-decreasing)
          (2) \max\{x, 0\} \le \log(1 + e^x)            (1 + e^x \ge \max\{1, e^x\})
              => L^i_{hinge} \le \log(1 + e^{a} \sum_j e^{-d_j})
                 = \log \frac{e^{-a} + \sum_j e^{-d_j}}{e^{-a}}  = the expression above.

    (The extracted appendix shows ``\log\{\sum_j e^{-d_j} + e^{a} + 1\}`` in step (2);
    the correct term is the *product* ``e^{a} \sum_j e^{-d_j}``.)

    The gap is at most ``\log|N_i| + \log 2`` and vanishes as the distances separate:
    multiplying all distances by ``t`` (a sharper temperature) makes
    ``bound(t d) / t -> hinge(d)``. Computed with ``logsumexp``: no overflow for large
    distances. Samples without negatives give 0.

    Args:
        d_own: ``(n,)``.
        d_neg: ``(n, M)``.
        alpha: ``alpha >= 0``.
        neg_mask: ``(n, M)`` bool of negatives, or ``None`` (all columns are negatives).

    Returns:
        ``(n,)``, elementwise ``>=`` :func:`dpah_inter_hinge`.
    """
    d_neg = _negatives(d_own, d_neg, neg_mask)
    a = (1.0 + alpha) * d_own
    logits = torch.cat([-a[:, None], -d_neg], dim=1)
    return torch.logsumexp(logits, dim=1) + a


class DPAHLoss(HashingLoss):
    r"""Deep Position-Aware Hashing loss (Wang et al., WACV 2020) with learnable class anchors.

    Each class ``j`` owns an anchor ("position") ``\theta_j = tanh(A_j)`` in ``[-1, 1]^K``,
    where ``A = self.anchors`` is the learnable ``(C, K)`` parameter (unbounded; the
    ``tanh`` is applied inside, and ``self.positions`` returns ``tanh(A)``). **Pass the
    loss's parameters to the optimizer** together with the network's, e.g.
    ``Adam([*model.parameters(), *loss.parameters()])``.

    With ``b_i = tanh(outputs_i)`` (``output_activation="tanh"``), the distances
    ``d(b, \theta) = (K - b^T\theta)/2`` and the own anchor
    ``\bar\theta_i = mean_{j \in labels(i)} \theta_j`` (the class's anchor for
    single-label data),

        L = mean_i [ L^i_{inter}(s d) + \lambda_{intra} d(b_i, \bar\theta_i)
                     + \lambda_{quant} || |b_i| - 1 ||_1 ]

    * ``L^i_{inter}`` is the LogSumExp bound :func:`dpah_inter_bound` applied to the
      distances multiplied by ``scale = s``: it pushes ``b_i`` to be closer to its own
      anchor (by the factor ``1 + alpha``) than to any other class's anchor.
    * the intra-class term pulls codes to their own anchor (and anchors to their codes);
    * the quantization term pushes ``|b|`` to 1 so that ``sign(b)`` loses little.

    ``scale`` is an inverse temperature: the inter term satisfies
    ``s \cdot hinge(d) <= L_{inter}(s d) <= s \cdot hinge(d) + \log(2(C-1))`` for every
    ``s``, so a small ``s`` gives a soft loss in which all wrong anchors and the
    satisfied samples still pull, while a large ``s`` makes it ``s`` times the hinge up
    to a relatively negligible constant (only the closest wrong anchor of a violating
    sample matters). Distances are in bits, up to ``K``, so the right ``s`` depends on
    ``K``. ``s = 1`` is the appendix's Eq. 2 as written.

    Our copy of the paper does not give its term weights; the defaults below are our
    choice (``alpha = 0.5``, ``scale = 1``, ``intra_weight = 0.1``,
    ``quant_weight = 0.01``), chosen on a small synthetic check, not the paper's.

    Args:
        n_bits: ``K``.
        n_classes: ``C`` (one anchor each).
        alpha: relative margin in the inter term (``>= 0``).
        scale: multiplier ``s > 0`` of the distances inside the inter term.
        intra_weight: ``\lambda_{intra} >= 0``.
        quant_weight: ``\lambda_{quant} >= 0``.
        output_activation: ``"tanh"`` (default: the loss bounds raw outputs with tanh)
            or ``None`` (outputs are used as they are, e.g. the network already ends
            in tanh; they should then lie in ``[-1, 1]``).
        init: where the positions start. ``"normal"`` (default): ``A ~ N(0, 1)``, positions
            ``tanh(A)`` scattered around the zero code. Or the name of a target generator of
            :mod:`hashlib_edu.targets` (``"bernoulli"``, ``"hadamard"``, ``"maxhd"``):
            positions ``init_magnitude * o_j``, spread out from the start, still learned. From
            the Gaussian start the learned positions drift together on small data (notebook 05);
            the paper does not say how it initializes them.
        init_magnitude: ``|theta|`` of the generator-based starts, in ``(0, 1)`` (0.9: not so
            close to 1 that tanh's saturation freezes the positions).
        seed: seed of the anchors' initialization.

    Shape:
        - outputs: ``(n, K)``; labels: ``(n,)`` class ids or ``(n, C)`` multi-hot,
          every sample with at least one label.
        - result: scalar.

    Codes: ``sign(outputs)`` (``threshold = 0.0``); anchors' codes: ``sign(self.positions)``.
    """

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        alpha: float = 0.5,
        scale: float = 1.0,
        intra_weight: float = 0.1,
        quant_weight: float = 0.01,
        output_activation: str | None = "tanh",
        init: str = "normal",
        init_magnitude: float = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.n_bits, self.n_classes = _sizes(n_bits, n_classes)
        self.alpha = _positive(alpha, "alpha", allow_zero=True)
        self.scale = _positive(scale, "scale")
        self.intra_weight = _positive(intra_weight, "intra_weight", allow_zero=True)
        self.quant_weight = _positive(quant_weight, "quant_weight", allow_zero=True)
        if output_activation not in ("tanh", None):
            raise ValueError(f"output_activation must be 'tanh' or None; got {output_activation!r}.")
        self.output_activation = output_activation
        self.init = str(init).lower()
        if self.init not in ("normal", *TARGET_NAMES):
            raise ValueError(f"init must be 'normal' or one of {TARGET_NAMES}; got {init!r}.")
        self.init_magnitude = float(init_magnitude)
        if not 0.0 < self.init_magnitude < 1.0:
            raise ValueError(f"init_magnitude must lie in (0, 1); got {init_magnitude}.")
        if self.init == "normal":
            g = torch.Generator().manual_seed(int(seed))
            anchors = torch.randn(self.n_classes, self.n_bits, generator=g)
        else:
            targets = make_targets(self.init, self.n_classes, self.n_bits, seed=seed).float()
            anchors = torch.atanh(torch.tensor(self.init_magnitude)) * targets
        self.anchors = nn.Parameter(anchors)

    @property
    def positions(self) -> torch.Tensor:
        """``(C, K)`` anchors in ``(-1, 1)``: ``tanh(self.anchors)`` (differentiable)."""
        return torch.tanh(self.anchors)

    @torch.no_grad()
    def set_positions(self, theta: torch.Tensor) -> None:
        """Set the anchors so that ``self.positions == theta`` (``(C, K)``, entries in ``(-1, 1)``)."""
        theta = torch.as_tensor(theta, dtype=self.anchors.dtype, device=self.anchors.device)
        if theta.shape != self.anchors.shape:
            raise ValueError(f"theta must have shape {tuple(self.anchors.shape)}.")
        if bool((theta.abs() >= 1).any()):
            raise ValueError("positions must lie strictly inside (-1, 1) (they are tanh values).")
        self.anchors.copy_(torch.atanh(theta))

    def activate(self, outputs: torch.Tensor) -> torch.Tensor:
        """The bounded codes ``b`` the loss works on: ``tanh(outputs)`` or ``outputs``."""
        return torch.tanh(outputs) if self.output_activation == "tanh" else outputs

    def _labels(self, labels: Any, n: int, device: torch.device) -> torch.Tensor:
        y = to_multi_hot(labels, self.n_classes, n_items=n).to(device)
        if bool((y.sum(dim=1) == 0).any()):
            raise ValueError(
                "DPAH: some samples have no label, hence no own anchor; drop them from the batch."
            )
        return y

    def own_positions(self, labels: Any) -> torch.Tensor:
        r"""``(n, K)`` own anchors ``\bar\theta_i`` = mean of the anchors of ``i``'s labels."""
        theta = self.positions
        y = self._labels(labels, as_label_tensor(labels).shape[0], theta.device).to(theta.dtype)
        return (y / y.sum(dim=1, keepdim=True)) @ theta

    def distances(self, outputs: torch.Tensor) -> torch.Tensor:
        r"""``(n, C)`` relaxed Hamming distances ``d(b_i, \theta_j)`` (unscaled)."""
        b = self.activate(_check_outputs(outputs, self.n_bits))
        return relaxed_hamming_distance(b, self.positions.to(b.dtype))

    def terms(self, outputs: torch.Tensor, labels: Any) -> dict[str, torch.Tensor]:
        """The three batch-mean terms ``{"inter", "intra", "quant"}`` (unweighted scalars)."""
        outputs = _check_outputs(outputs, self.n_bits)
        y = self._labels(labels, outputs.shape[0], outputs.device).to(outputs.dtype)
        b = self.activate(outputs)
        d_all = relaxed_hamming_distance(b, self.positions.to(b.dtype))  # (n, C)
        # d is linear in theta, so the distance to the mean anchor is the mean distance
        d_own = ((y / y.sum(dim=1, keepdim=True)) * d_all).sum(dim=1)  # (n,)
        inter = dpah_inter_bound(self.scale * d_own, self.scale * d_all, self.alpha,
                                 neg_mask=y == 0)
        return {
            "inter": inter.mean(),
            "intra": d_own.mean(),
            "quant": dsh_regularizer(b).mean(),
        }

    def forward(self, outputs: torch.Tensor, labels: Any) -> torch.Tensor:
        t = self.terms(outputs, labels)
        return t["inter"] + self.intra_weight * t["intra"] + self.quant_weight * t["quant"]

    def extra_repr(self) -> str:
        return (
            f"n_bits={self.n_bits}, n_classes={self.n_classes}, alpha={self.alpha}, "
            f"scale={self.scale}, intra_weight={self.intra_weight}, "
            f"quant_weight={self.quant_weight}, output_activation={self.output_activation!r}"
            + ("" if self.init == "normal"
               else f", init={self.init!r}, init_magnitude={self.init_magnitude}")
        )


# --------------------------------------------------------------------------- OrthoHash


class OrthoHashLoss(HashingLoss):
    r"""OrthoHash: one cosine-margin classification loss towards fixed binary targets.

    Hoe et al., "One Loss for All", NeurIPS 2021 (supplementary Algorithm 1). Class
    ``c`` has a fixed target ``o_c in {-1, +1}^K`` (buffer ``self.targets``). For a
    continuous code ``v`` and label vector ``y in {0, 1}^C``:

        logits_c = s (\cos(v, o_c) - m y_c)                 (margin_type="cos", OrthoCos)
        logits_c = s \cos(\theta_c + m y_c),  \theta_c = \arccos \cos(v, o_c)
                                                           (margin_type="arc", OrthoArc)
        L = mean_n [ -\sum_c t_c \log softmax(logits)_c ],  t = y / \sum_c y_c

    i.e. softmax cross-entropy with the one-hot target for single-label data and the
    "label-smoothed" ``y / |y|`` for multi-label data; the margin applies to every
    positive class. Since ``cos(v, o_c)`` only depends on the direction of ``v``, and
    ``||\sqrt{K} v/||v|| - sign(v)||^2 = 2K(1 - \cos(v, sign(v)))``, maximizing the cosine to
    the class's binary target also drives down the quantization error.

    ``loss_type`` selects the classification loss (supplementary D.4):

    * ``"ce"`` (default, the paper's method): the softmax cross-entropy above.
    * ``"bce"``: per-bit binary cross-entropy toward the target *code*. With
      ``\hat v = \sqrt{K} v / ||v||`` (``v`` rescaled to the norm of a ``+-1`` code),
      bit ``k`` has logit ``s \hat v_k`` and target ``(\bar o_k + 1) / 2``, where
      ``\bar o = mean_{c: y_c = 1} o_c`` (so bits on which a multi-label item's classes
      disagree get target 1/2); mean over bits and batch. ``margin`` and
      ``margin_type`` are unused.
    * ``"class_bce"``: one sigmoid per class on the margin logits above, BCE against
      the multi-hot ``y`` (the supplementary's "Sigmoid" row of Table 5, without
      imbalance weights); mean over classes and batch.

    Args:
        n_bits: ``K``.
        n_classes: ``C``.
        margin: ``m >= 0`` (paper: 0.2).
        scale: ``s > 0``; ``None`` -> ``\sqrt{K}`` (paper default); ``"adacos"`` ->
            ``\sqrt{2} \log(C - 1)`` (supplementary D.2, needs ``C >= 3``).
        targets: ``"bernoulli"`` (paper default), ``"hadamard"``, ``"maxhd"`` (see
            :mod:`hashlib_edu.targets`), or a ``(C, K)`` tensor/array of ``+-1``.
        seed: seed of the target generator.
        margin_type: ``"cos"`` (OrthoCos) or ``"arc"`` (OrthoArc, ``cos(\theta + m)``
            without ArcFace's correction for ``\theta + m > \pi``).
        loss_type: ``"ce"``, ``"bce"`` or ``"class_bce"``.

    Shape:
        - outputs: ``(n, K)`` continuous codes ``v`` (no row exactly zero); labels:
          ``(n,)`` class ids or ``(n, C)`` multi-hot with at least one label per row.
        - result: scalar.

    Codes: ``sign(outputs)`` (``threshold = 0.0``). The "+BN" variants put a
    ``BatchNorm1d`` on ``v`` in the model, not in the loss.
    """

    targets: torch.Tensor

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        margin: float = 0.2,
        scale: float | str | None = None,
        targets: str | Any = "bernoulli",
        seed: int = 0,
        margin_type: str = "cos",
        loss_type: str = "ce",
    ) -> None:
        super().__init__()
        self.n_bits, self.n_classes = _sizes(n_bits, n_classes)
        self.margin = _positive(margin, "margin", allow_zero=True)
        if scale is None:
            scale = math.sqrt(self.n_bits)
        elif isinstance(scale, str):
            if scale != "adacos" or self.n_classes < 3:
                raise ValueError("scale must be a number, None (sqrt(K)) or 'adacos' (needs C >= 3).")
            scale = math.sqrt(2.0) * math.log(self.n_classes - 1)
        self.scale = _positive(scale, "scale")
        if margin_type not in ("cos", "arc"):
            raise ValueError(f"margin_type must be 'cos' or 'arc'; got {margin_type!r}.")
        if loss_type not in ("ce", "bce", "class_bce"):
            raise ValueError(f"loss_type must be 'ce', 'bce' or 'class_bce'; got {loss_type!r}.")
        self.margin_type, self.loss_type = margin_type, loss_type
        self.target_name = targets if isinstance(targets, str) else "custom"
        if isinstance(targets, str):
            if targets.lower() not in TARGET_NAMES:
                raise ValueError(f"targets must be one of {TARGET_NAMES} or a (C, K) +-1 tensor.")
            t = make_targets(targets, self.n_classes, self.n_bits, seed=seed)
        else:
            t = torch.as_tensor(np.asarray(targets) if not torch.is_tensor(targets) else targets)
            t = t.detach().float().cpu()
            if t.shape != (self.n_classes, self.n_bits):
                raise ValueError(
                    f"targets must have shape (n_classes, n_bits) = ({self.n_classes}, "
                    f"{self.n_bits}); got {tuple(t.shape)}."
                )
            if not bool(((t == 1) | (t == -1)).all()):
                raise ValueError("targets must hold only -1 and +1 (convert {0,1} bits with 2b-1).")
        self.register_buffer("targets", t.contiguous())

    def cosine(self, outputs: torch.Tensor) -> torch.Tensor:
        """``(n, C)`` cosine similarities ``cos(v_i, o_c)``."""
        outputs = _check_outputs(outputs, self.n_bits)
        v = F.normalize(outputs, dim=1)
        o = self.targets.to(outputs.dtype) / math.sqrt(self.n_bits)  # rows of +-1 have norm sqrt(K)
        return v @ o.T

    def logits(self, outputs: torch.Tensor, labels: Any | None = None) -> torch.Tensor:
        """``(n, C)`` scaled logits; with ``labels``, the margin is applied to the positive classes.

        ``logits(outputs).argmax(1)`` is the predicted class (nearest target by cosine).
        """
        cos = self.cosine(outputs)
        if labels is None:
            return self.scale * cos
        y = to_multi_hot(labels, self.n_classes, n_items=cos.shape[0]).to(cos)
        return self._margin_logits(cos, y)

    def _margin_logits(self, cos: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.margin_type == "cos":
            return self.scale * (cos - self.margin * y)
        # cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m), sin(theta) >= 0 on [0, pi]
        sin = (1.0 - cos * cos).clamp_min(1e-12).sqrt()
        shifted = cos * math.cos(self.margin) - sin * math.sin(self.margin)
        return self.scale * torch.where(y > 0, shifted, cos)

    def forward(self, outputs: torch.Tensor, labels: Any) -> torch.Tensor:
        outputs = _check_outputs(outputs, self.n_bits)
        y = to_multi_hot(labels, self.n_classes, n_items=outputs.shape[0]).to(outputs)
        n_pos = y.sum(dim=1, keepdim=True)
        if bool((n_pos == 0).any()):
            raise ValueError("OrthoHash: some samples have no label; drop them from the batch.")
        if self.loss_type == "bce":
            v_hat = math.sqrt(self.n_bits) * F.normalize(outputs, dim=1)
            code_target = ((y / n_pos) @ self.targets.to(outputs) + 1.0) / 2.0  # (n, K) in [0, 1]
            return F.binary_cross_entropy_with_logits(self.scale * v_hat, code_target)
        logits = self._margin_logits(self.cosine(outputs), y)
        if self.loss_type == "class_bce":
            return F.binary_cross_entropy_with_logits(logits, y)
        return -((y / n_pos) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def extra_repr(self) -> str:
        return (
            f"n_bits={self.n_bits}, n_classes={self.n_classes}, margin={self.margin}, "
            f"scale={self.scale:.4g}, targets={self.target_name!r}, "
            f"margin_type={self.margin_type!r}, loss_type={self.loss_type!r}"
        )
