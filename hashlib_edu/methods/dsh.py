r"""DSH -- "Deep Supervised Hashing for Fast Image Retrieval" (Liu, Wang, Shan, Chen, CVPR 2016).

A pairwise loss on real-valued outputs ``b``: similar pairs are pulled together, dissimilar
pairs pushed apart up to a margin ``m``, and a regularizer pulls every output towards
``+-1`` so that ``sign(b)`` loses little:

    L(b_1, b_2, y) = \frac12 (1 - y) ||b_1 - b_2||_2^2 + \frac12 y \max(m - ||b_1 - b_2||_2^2, 0)
                   + \alpha (|| |b_1| - 1 ||_1 + || |b_2| - 1 ||_1)

Everything specific to the method is here: the loss (:class:`DSHLoss`, and the sigmoid
relaxation the paper compares it with, :class:`DSHSigmoidLoss`), DSH's own CIFAR-10 network
(:class:`DSHNet`), its recipe, settings and epoch budget (also DSH's "finetune from the 12-bit
model", :func:`finetune_init`), and :data:`SPEC`, through which
:func:`hashlib_edu.experiment.run` trains it -- on DSH's network or on the course's shared small
backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import conv_block
from ..losses import (
    HashingLoss,
    check_label_count,
    check_outputs,
    check_positive,
    check_sizes,
    dsh_regularizer,
    pairwise_squared_distances,
    similarity_matrix,
)
from ..recipes import Recipe
from ..specs import MethodSpec, code_layer_network

__all__ = ["dsh_regularizer", "dsh_loss", "dsh_sigmoid_loss", "DSHLoss", "DSHSigmoidLoss",
           "DSHNet", "DSH_EPOCHS", "dsh_recipe", "finetune_init"]


# --------------------------------------------------------------------------- loss


def _contrastive_pair_mean(x: torch.Tensor, labels: Any, margin: float) -> torch.Tensor:
    """Mean over unordered pairs ``i < j`` of DSH's contrastive term (shared by both variants)."""
    n = x.shape[0]
    if n < 2:
        raise ValueError("DSH needs at least 2 items in a batch to form a pair.")
    labels = check_label_count(labels, n)
    similar = similarity_matrix(labels).to(x.device)  # (n, n) bool, y = 0 <=> similar
    d2 = pairwise_squared_distances(x)
    per_pair = torch.where(similar, 0.5 * d2, 0.5 * F.relu(margin - d2))
    upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(diagonal=1)
    return per_pair[upper].mean()


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
    outputs = check_outputs(outputs)
    alpha = check_positive(alpha, "alpha", allow_zero=True)
    m = 2.0 * outputs.shape[1] if margin is None else check_positive(margin, "margin")
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
    outputs = check_outputs(outputs)
    margin = check_positive(margin, "margin")
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
        self.n_bits = check_sizes(n_bits)[0]
        self.alpha = check_positive(alpha, "alpha", allow_zero=True)
        self.margin = 2.0 * self.n_bits if margin is None else check_positive(margin, "margin")

    def forward(self, outputs: torch.Tensor, labels: Any) -> torch.Tensor:
        check_outputs(outputs, self.n_bits)
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
        self.n_bits = check_sizes(n_bits)[0]
        self.margin = check_positive(margin, "margin")
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
        check_outputs(outputs, self.n_bits)
        return dsh_sigmoid_loss(outputs, labels, self.margin, apply_sigmoid=self.apply_sigmoid)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, margin={self.margin}, apply_sigmoid={self.apply_sigmoid}"


# --------------------------------------------------------------------------- network and training


class DSHNet(nn.Module):
    """DSH's CIFAR-10 network (Liu et al., CVPR 2016).

    Three 5x5 convolutions (32, 32, 64 filters), each followed by 3x3 stride-2
    pooling (max, then average, average as in DSH's Caffe model), then FC 500 and FC k.
    Optional BatchNorm after each convolution (our change).

    Shapes: ``(n, 3, 32, 32) -> (n, k)`` real-valued outputs.
    """

    #: The ``backbone`` its results record (:func:`hashlib_edu.results.save_model_results`).
    backbone_name = "dshnet"

    def __init__(self, n_bits: int = 12, batchnorm: bool = True) -> None:
        super().__init__()
        if n_bits <= 0:
            raise ValueError(f"n_bits must be positive; got {n_bits}.")
        self.n_bits = n_bits
        self.features = nn.Sequential(
            *conv_block(3, 32, 5, batchnorm), nn.MaxPool2d(3, 2, ceil_mode=True),
            *conv_block(32, 32, 5, batchnorm), nn.AvgPool2d(3, 2, ceil_mode=True),
            *conv_block(32, 64, 5, batchnorm), nn.AvgPool2d(3, 2, ceil_mode=True),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, 500), nn.ReLU(inplace=True))
        self.hash = nn.Linear(500, n_bits)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.hash(self.fc(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


#: Epochs of DSH trained from scratch, per network, protocol and profile: DSH's own CIFAR
#: network (``dshnet``) on its protocol ``cifar10-dsh`` (50,000 training images) and on
#: ``cifar10-1k`` (notebook 04's sweeps, finetuning and ensembles); the small backbone + a code
#: layer (``small``, the equal-backbone comparison with the other methods).
DSH_EPOCHS = {
    "dshnet": {"cifar10-dsh": {"smoke": 1, "quick": 26, "paper": 150},
               "cifar10-1k": {"smoke": 1, "quick": 10, "paper": 150}},
    "small": {"cifar10-1k": {"smoke": 1, "quick": 50, "paper": 100},
              "cifar10-dsh": {"smoke": 1, "quick": 30, "paper": 100}},
}


def dsh_recipe(epochs: int, lr: float = 2e-3) -> Recipe:
    """Modern recipe for DSH's CIFAR net: AdamW with a one-cycle learning rate (max ``lr``),
    batch 128 (all 8,128 pairs of each batch), pad-and-crop + flip, BatchNorm.

    The paper trains with Caffe SGD (lr 1e-3, batch 200, weight decay 0.004, no BN,
    no augmentation) for 150,000 iterations on a GPU.
    """
    return Recipe(epochs=epochs, lr=lr, weight_decay=5e-4, batch_size=128,
                  optimizer="adamw", schedule="onecycle", augment=True,
                  extra={"batchnorm": True})


def finetune_init(source: nn.Module, n_bits: int, batchnorm: bool = True) -> DSHNet:
    """A ``DSHNet(n_bits)`` with every layer copied from ``source`` except the last one
    (the hash layer, freshly initialized): DSH's "finetune from the 12-bit model"."""
    model = DSHNet(n_bits, batchnorm=batchnorm)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("hash.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("hash.") for k in missing):
        raise ValueError("source must be a DSHNet with the same layers (and BatchNorm setting).")
    return model


# --------------------------------------------------------------------------- as an experiment


@dataclass(frozen=True)
class DSHSettings:
    """What an :class:`~hashlib_edu.experiment.Experiment` of DSH may change.

    Attributes:
        loss: ``"dsh"`` (:class:`DSHLoss`, the paper's) or ``"sigmoid"``
            (:class:`DSHSigmoidLoss`, the relaxation the paper compares against).
        alpha: weight of the regularizer (``"dsh"`` only).
        margin: the margin; ``None``: ``2k`` for ``"dsh"`` (the paper's), 2 for ``"sigmoid"``.
        finetune_from: the experiment (as a dict) of a trained DSH network to start from:
            every layer but the hash layer is copied (DSH's "finetune from the 12-bit
            model", :func:`finetune_init`); ``None``: from scratch.
    """

    loss: str = "dsh"
    alpha: float = 0.01
    margin: float | None = None
    finetune_from: dict | None = None

    def __post_init__(self) -> None:
        if self.loss not in ("dsh", "sigmoid"):
            raise ValueError(f"loss must be 'dsh' or 'sigmoid'; got {self.loss!r}.")

    def make_loss(self, bits: int) -> HashingLoss:
        """The loss these settings define."""
        if self.loss == "sigmoid":
            return DSHSigmoidLoss(bits, margin=2.0 if self.margin is None else self.margin)
        return DSHLoss(bits, alpha=self.alpha, margin=self.margin)


def _recipe(settings: DSHSettings, backbone: str, epochs: int) -> Recipe:
    if backbone == "dshnet":
        return dsh_recipe(epochs)
    from ..recipes import code_layer_recipe

    return code_layer_recipe(epochs)


def _network(bits: int, n_classes: int, settings: DSHSettings, recipe: Recipe,
             backbone: str | nn.Module, feature_dim: int | None) -> nn.Module:
    if backbone == "dshnet":
        return DSHNet(bits, batchnorm=recipe.extra.get("batchnorm", True))
    return code_layer_network(bits, False, recipe, backbone, feature_dim)


#: DSH as an experiment: DSH's own network on its protocol, the small backbone + a code
#: layer elsewhere; the pairwise loss.
SPEC = MethodSpec(
    name="dsh", settings=DSHSettings,
    default_backbone=lambda protocol: "dshnet" if protocol == "cifar10-dsh" else "small",
    epochs=lambda backbone, protocol, profile: DSH_EPOCHS[backbone][protocol][profile],
    recipe=_recipe, network=_network,
    loss=lambda bits, n_classes, settings, seed, recipe: settings.make_loss(bits),
    finetune=lambda source, bits, settings, recipe: finetune_init(
        source, bits, batchnorm=recipe.extra.get("batchnorm", True)))
