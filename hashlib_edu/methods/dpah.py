r"""DPAH -- "Deep Position-Aware Hashing for Semantic Continuous Image Retrieval" (Wang, Wang,
Qiao, Shan, Chen, WACV 2020).

Every class ``j`` owns a learnable position (anchor) ``\theta_j in [-1, 1]^K``; codes
``b = tanh(h)`` are pulled to their class's position and pushed away from the others with a
LogSumExp bound of the inter-class hinge (the paper's appendix, Eq. 2), with the relaxed
Hamming distance ``d(b, \theta) = (K - b^T \theta) / 2``:

    L^i_{inter} = \log\Big(e^{-(1+\alpha) d(b_i, \theta_{y_i})} + \sum_{j \ne y_i} e^{-d(b_i, \theta_j)}\Big) + (1+\alpha) d(b_i, \theta_{y_i})

Everything specific to the method is here: the loss (:class:`DPAHLoss`, with the hinge and
its bound as functions), the course's settings (:func:`dpah_loss`: a spread-out start and a
distance scale), its recipe and :data:`SPEC` (how :func:`hashlib_edu.experiment.run` trains
it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..codes import bernoulli_targets, hadamard_targets
from ..losses import (
    HashingLoss,
    as_label_tensor,
    check_outputs,
    check_positive,
    check_sizes,
    dsh_regularizer,
    to_multi_hot,
)
from ..recipes import Recipe, sgd_onecycle_recipe
from ..specs import code_layer_method

__all__ = ["relaxed_hamming_distance", "dpah_inter_hinge", "dpah_inter_bound", "DPAHLoss",
           "INIT_NAMES", "DPAH_SETTINGS", "dpah_scale", "dpah_loss", "DPAH_EPOCHS",
           "dpah_recipe", ]

#: Named starts of the positions (``DPAHLoss(init=)``); a ``(C, K)`` tensor is accepted too.
INIT_NAMES = ("normal", "bernoulli", "hadamard")
_STARTS = {"bernoulli": bernoulli_targets, "hadamard": hadamard_targets}


# --------------------------------------------------------------------------- loss


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

    The paper's appendix does not give its term weights; the defaults below are our
    choice (``alpha = 0.5``, ``scale = 1``, ``intra_weight = 0.1``,
    ``quant_weight = 0.01``), chosen on a small synthetic check, not the paper's. The
    course trains with :func:`dpah_loss` (:data:`DPAH_SETTINGS`: a spread start and
    ``s = 2/sqrt(K)``, compared on a validation split in notebook 05).

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
            ``tanh(A)`` scattered around the zero code. ``"bernoulli"`` or ``"hadamard"``
            (the code constructions of :mod:`hashlib_edu.codes`), or a ``(C, K)`` tensor of
            ``+-1`` rows ``o_j`` (e.g. OrthoHash's MaxHD targets): positions
            ``init_magnitude * o_j``, spread out from the start, still learned. From
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
        init: str | torch.Tensor = "normal",
        init_magnitude: float = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.n_bits, self.n_classes = check_sizes(n_bits, n_classes)
        self.alpha = check_positive(alpha, "alpha", allow_zero=True)
        self.scale = check_positive(scale, "scale")
        self.intra_weight = check_positive(intra_weight, "intra_weight", allow_zero=True)
        self.quant_weight = check_positive(quant_weight, "quant_weight", allow_zero=True)
        if output_activation not in ("tanh", None):
            raise ValueError(f"output_activation must be 'tanh' or None; got {output_activation!r}.")
        self.output_activation = output_activation
        if torch.is_tensor(init) or isinstance(init, np.ndarray):
            start = torch.as_tensor(init).float()
            if start.shape != (self.n_classes, self.n_bits) or not bool((start.abs() == 1).all()):
                raise ValueError(f"an init tensor must be ({self.n_classes}, {self.n_bits}) "
                                 "rows of +-1 (one start code per class).")
            self.init = "custom"
        else:
            self.init = str(init).lower()
            if self.init not in INIT_NAMES:
                raise ValueError(f"init must be one of {INIT_NAMES} or a (C, K) +-1 tensor; "
                                 f"got {init!r}.")
            start = (None if self.init == "normal" else
                     _STARTS[self.init](self.n_classes, self.n_bits, seed=seed).float())
        self.init_magnitude = float(init_magnitude)
        if not 0.0 < self.init_magnitude < 1.0:
            raise ValueError(f"init_magnitude must lie in (0, 1); got {init_magnitude}.")
        if self.init == "normal":
            g = torch.Generator().manual_seed(int(seed))
            anchors = torch.randn(self.n_classes, self.n_bits, generator=g)
        else:
            anchors = torch.atanh(torch.tensor(self.init_magnitude)) * start
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
        b = self.activate(check_outputs(outputs, self.n_bits))
        return relaxed_hamming_distance(b, self.positions.to(b.dtype))

    def terms(self, outputs: torch.Tensor, labels: Any) -> dict[str, torch.Tensor]:
        """The three batch-mean terms ``{"inter", "intra", "quant"}`` (unweighted scalars)."""
        outputs = check_outputs(outputs, self.n_bits)
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


# --------------------------------------------------------------------------- course settings and training


#: The course's DPAH settings on the shared small backbone, on top of :class:`DPAHLoss`'s
#: defaults (term weights 0.1 / 0.01): no margin (``alpha = 0`` instead of the loss's 0.5);
#: positions started spread out, at
#: ``0.9 *`` rows of a Hadamard matrix (as OrthoHash's Hadamard targets), instead of scattered
#: around the zero code; and the distance scale ``s = 2/sqrt(K)`` (:func:`dpah_scale`) instead
#: of 1. Trained with :func:`dpah_recipe` (OrthoHash's recipe) and BatchNorm on the latent, as
#: OrthoHash. Notebook 05 compares them on a validation split of the training images
#: (:func:`hashlib_edu.data.validation_protocol`, 32 bits, 10 epochs): ``s = 2/sqrt(K)`` beats
#: ``s = 1`` from either start, and over three seeds ``alpha = 0`` (no margin) is ahead of the
#: loss's default 0.5 on every seed and by more than 0.01 on average (+0.025, +0.022, +0.012),
#: so the course uses ``alpha = 0``.
DPAH_SETTINGS = {"alpha": 0.0, "init": "hadamard", "init_magnitude": 0.9}


def dpah_scale(bits: int) -> float:
    """``s = 2 / sqrt(K)``: with it DPAH's logits ``-s d(b, theta)`` are ``sqrt(K) cos(b, theta)``
    up to a constant for binary ``b`` and ``theta`` -- OrthoHash's logits at its scale ``sqrt(K)``."""
    return 2.0 / math.sqrt(int(bits))


def dpah_loss(bits: int, n_classes: int = 10, seed: int = 0, **overrides) -> DPAHLoss:
    """``DPAHLoss(bits, n_classes, scale=dpah_scale(bits), **DPAH_SETTINGS, seed=seed)``;
    ``overrides`` replace single settings (e.g. ``alpha=1.0``, or ``init="normal", scale=1.0``
    for the loss's own defaults)."""
    settings = {**DPAH_SETTINGS, "scale": dpah_scale(bits), **overrides}
    return DPAHLoss(bits, n_classes, seed=seed, **settings)


#: Epochs of DPAH trained from scratch, per protocol and profile: OrthoHash's budget
#: (``cifar10-dsh`` trains on ten times the images, so ``quick`` gives it half the epochs).
DPAH_EPOCHS = {"cifar10-1k": {"smoke": 1, "quick": 60, "paper": 100},
               "cifar10-dsh": {"smoke": 1, "quick": 30, "paper": 100}}


def dpah_recipe(epochs: int, lr: float = 0.1) -> Recipe:
    """DPAH's recipe on the shared small backbone: OrthoHash's (CNNBH's SGD recipe without
    label smoothing: SGD, momentum 0.9, weight decay 1e-3, one-cycle learning rate up to
    ``lr``, batch 128, BatchNorm, pad-and-crop + flip). The anchors get no weight decay (see
    :func:`hashlib_edu.training.train_model`)."""
    return sgd_onecycle_recipe(epochs, lr)


# --------------------------------------------------------------------------- as an experiment


@dataclass(frozen=True)
class DPAHSettings:
    """What an :class:`~hashlib_edu.experiment.Experiment` of DPAH may change (defaults: the
    course's settings, :data:`DPAH_SETTINGS`).

    Attributes:
        alpha: the inter-class margin of the hinge (the paper's alpha).
        init: the positions' start, one of :data:`INIT_NAMES`.
        init_magnitude: the start's magnitude (rows of ``+-init_magnitude``).
        scale: the distance scale ``s``; ``None``: :func:`dpah_scale` of the code length.
        latent_bn: BatchNorm on the code layer.
    """

    alpha: float = DPAH_SETTINGS["alpha"]
    init: str = DPAH_SETTINGS["init"]
    init_magnitude: float = DPAH_SETTINGS["init_magnitude"]
    scale: float | None = None
    latent_bn: bool = True

    def loss(self, bits: int, n_classes: int, seed: int) -> DPAHLoss:
        """The loss these settings define."""
        settings = {k: v for k, v in asdict(self).items() if k != "latent_bn"}
        if settings["scale"] is None:
            settings["scale"] = dpah_scale(bits)
        return DPAHLoss(bits, n_classes, seed=seed, **settings)


#: DPAH as an experiment: the small backbone + a code layer with BatchNorm, DPAH's loss.
SPEC = code_layer_method("dpah", DPAHSettings, DPAH_EPOCHS, dpah_recipe)
