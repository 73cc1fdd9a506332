r"""CNNBH -- "CNN Based Hashing for Image Retrieval" (Guo & Li, arXiv:1509.01354).

A classification CNN with a linear "knob" layer ``H_k`` of ``k`` units before the classifier,
trained with plain cross-entropy; the codes are ``sign(H_k)``:

    backbone -> H_k (k units, no nonlinearity) -> Dropout(p) -> H_10 -> softmax

Everything specific to the method is here: the network (:class:`CNNBHNet`, the paper's
Table 2 dropout by code length), its training recipes (our modern one and the paper's
plain one), its settings and :data:`SPEC` (how :func:`hashlib_edu.experiment.run` trains it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..backbones import SmallBackbone
from ..recipes import Recipe, sgd_onecycle_recipe
from ..specs import MethodSpec

__all__ = ["CNNBH_DROPOUT", "CNNBHNet", "CNNBH_EPOCHS", "cnnbh_adamw_recipe", "cnnbh_sgd_recipe",
           "cnnbh_plain_recipe", "CNNBH_RECIPES", "CNNBHSettings", "SPEC",
           ]

#: CNNBH Table 2: final-dropout probability p by code length k.
CNNBH_DROPOUT: dict[int, float] = {8: 0.0, 12: 0.2, 16: 0.3, 24: 0.5, 32: 0.5, 40: 0.5, 48: 0.5}


class CNNBHNet(nn.Module):
    """CNNBH (Guo & Li): a classification CNN with a linear "knob" layer ``H_k``.

    ``backbone -> H_k (k units, no nonlinearity) -> Dropout(p) -> H_10``; trained
    with cross-entropy; codes are ``sign(H_k)``.

    Args:
        n_bits: knob width ``k``.
        n_classes: classifier outputs (10 for CIFAR-10).
        dropout: final dropout ``p``; ``None`` takes the paper's Table 2 value for ``k``.
        batchnorm: BatchNorm after each convolution (our modern-training change; the
            paper has none). At ``k = 48`` without BN: 125,562 parameters (paper: "125K").
        conv_dropout: dropout after each pooling layer (paper: 0.5).
        backbone: a module mapping inputs to ``(n, d)`` features instead of the small backbone
            (e.g. a pretrained network's tail, for the pretrained regimes); ``feature_dim``
            gives ``d``.

    Shapes: ``forward: (n, 3, 32, 32) -> (n, n_classes)`` logits; ``embed -> (n, k)``.
    """

    def __init__(self, n_bits: int = 48, n_classes: int = 10, dropout: float | None = None,
                 batchnorm: bool = True, conv_dropout: float = 0.5,
                 backbone: nn.Module | None = None, feature_dim: int | None = None) -> None:
        super().__init__()
        if n_bits <= 0:
            raise ValueError(f"n_bits must be positive; got {n_bits}.")
        if dropout is None:
            dropout = CNNBH_DROPOUT.get(n_bits, 0.5)
        self.n_bits, self.dropout_p = n_bits, dropout
        if backbone is not None and feature_dim is None:
            raise ValueError("pass feature_dim= with a custom backbone.")
        self.backbone = (backbone if backbone is not None
                         else SmallBackbone(batchnorm=batchnorm, dropout=conv_dropout))
        self.knob = nn.Linear(feature_dim or SmallBackbone.out_features, n_bits)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_bits, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Knob activations ``(n, k)`` (real-valued; codes are their signs)."""
        return self.knob(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x)))


#: Epochs of the CNNBH classifier trained from scratch, per protocol and profile (the paper:
#: 900 on ``cifar10-1k``; ``cifar10-dsh`` trains on ten times the images, so ``quick`` gives it
#: half the epochs).
CNNBH_EPOCHS = {"cifar10-1k": {"smoke": 1, "quick": 60, "paper": 900},
                "cifar10-dsh": {"smoke": 1, "quick": 30, "paper": 100}}


def cnnbh_adamw_recipe(epochs: int) -> Recipe:
    """:func:`cnnbh_sgd_recipe` with AdamW (weight decay 5e-4) and a one-cycle learning rate
    up to 3e-3: a candidate in notebook 03's recipe comparison."""
    return replace(cnnbh_sgd_recipe(epochs), optimizer="adamw", lr=3e-3, weight_decay=5e-4)


def cnnbh_sgd_recipe(epochs: int) -> Recipe:
    """The course's CNNBH recipe (:attr:`CNNBHSettings.recipe` ``"sgd"``): SGD (momentum 0.9,
    weight decay 1e-3) with a one-cycle learning rate up to 0.1, label smoothing 0.1,
    BatchNorm, pad-and-crop + flip, batch 128 -- the recipe of DPAH and OrthoHash
    (:func:`hashlib_edu.recipes.sgd_onecycle_recipe`) plus label smoothing.

    Notebook 03 compares it, on a validation split of the training images at the headline's
    budget and with the course's rule (:func:`hashlib_edu.selection.choose`), with the same
    without label smoothing, with AdamW (:func:`cnnbh_adamw_recipe`) and with the paper's
    plain recipe (:func:`cnnbh_plain_recipe`); it keeps this one."""
    return sgd_onecycle_recipe(epochs, lr=0.1, label_smoothing=0.1)


def cnnbh_plain_recipe(epochs: int) -> Recipe:
    """The paper's plain recipe (no BatchNorm, no augmentation, SGD at a constant 0.01)."""
    return Recipe(epochs=epochs, lr=0.01, weight_decay=5e-4, batch_size=128,
                  optimizer="sgd", schedule="constant", augment=False,
                  extra={"label_smoothing": 0.0, "batchnorm": False, "conv_dropout": 0.5})


# --------------------------------------------------------------------------- as an experiment

#: The CNNBH recipes by name (:attr:`CNNBHSettings.recipe`).
CNNBH_RECIPES = {"sgd": cnnbh_sgd_recipe, "adamw": cnnbh_adamw_recipe,
                 "plain": cnnbh_plain_recipe}


@dataclass(frozen=True)
class CNNBHSettings:
    """What an :class:`~hashlib_edu.experiment.Experiment` of CNNBH may change.

    Attributes:
        recipe: which of :data:`CNNBH_RECIPES` trains it (the recipe also sets label
            smoothing, BatchNorm and the dropout after pooling).
        dropout: the knob's dropout ``p``; ``None``: the paper's Table 2 value for ``k``.
        label_smoothing: of the cross-entropy; ``None``: the recipe's.
    """

    recipe: str = "sgd"
    dropout: float | None = None
    label_smoothing: float | None = None

    def __post_init__(self) -> None:
        if self.recipe not in CNNBH_RECIPES:
            raise ValueError(f"recipe must be one of {list(CNNBH_RECIPES)}; got {self.recipe!r}.")


def _network(bits: int, n_classes: int, settings: CNNBHSettings, recipe: Recipe,
             backbone: str | nn.Module, feature_dim: int | None) -> CNNBHNet:
    if isinstance(backbone, str) and backbone != "small":
        raise ValueError(f"CNNBH is built on the 'small' backbone or a module; got {backbone!r}.")
    return CNNBHNet(bits, n_classes, dropout=settings.dropout,
                    batchnorm=recipe.extra.get("batchnorm", True),
                    conv_dropout=recipe.extra.get("conv_dropout", 0.5),
                    backbone=None if isinstance(backbone, str) else backbone,
                    feature_dim=feature_dim)


#: CNNBH as an experiment: the classifier with its knob, cross-entropy.
SPEC = MethodSpec(
    name="cnnbh", settings=CNNBHSettings, default_backbone=lambda protocol: "small",
    epochs=lambda backbone, protocol, profile: CNNBH_EPOCHS[protocol][profile],
    recipe=lambda settings, backbone, epochs: CNNBH_RECIPES[settings.recipe](epochs),
    network=_network,
    loss=lambda bits, n_classes, settings, seed, recipe: nn.CrossEntropyLoss(
        label_smoothing=(recipe.extra.get("label_smoothing", 0.0)
                         if settings.label_smoothing is None else settings.label_smoothing)))
