"""What a method module tells the experiment layer about itself: :class:`MethodSpec`.

Each module of :mod:`hashlib_edu.methods` defines one ``SPEC`` -- its settings type (a
frozen dataclass whose defaults are the course's settings), its epoch budget, its recipe,
and builders for its network and loss -- and :mod:`hashlib_edu.experiment` keeps them in its
one registry. The spec lives in the core so that the methods need not import the layer above
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .recipes import Recipe

__all__ = ["MethodSpec", "FittedSpec", "code_layer_network", "code_layer_method"]


@dataclass(frozen=True)
class MethodSpec:
    """A trained method, as :class:`~hashlib_edu.experiment.Experiment` uses it.

    Attributes:
        name: the method's short name (``"dpah"``).
        settings: its settings type; ``settings()`` gives the course's defaults.
        default_backbone: ``protocol -> name`` of the network trained from scratch
            (``"small"``, or ``"dshnet"`` for DSH on its own protocol).
        epochs: ``(backbone, protocol, profile) -> epochs`` of a model trained from scratch:
            the one place the method's budget is written.
        recipe: ``(settings, backbone, epochs) -> Recipe`` for the scratch regime.
        network: ``(bits, n_classes, settings, recipe, backbone, feature_dim) -> nn.Module``;
            ``backbone`` is the name of a network built from scratch (``"small"``,
            ``"dshnet"``) or a module giving ``(n, feature_dim)`` features (a pretrained one).
        loss: ``(bits, n_classes, settings, seed, recipe) -> nn.Module``.
        threshold: binarization threshold of the network's outputs (0.0: signs).
        finetune: ``(source_model, bits, settings, recipe) -> nn.Module`` for a method whose
            settings may name a trained model to start from (``settings.finetune_from``: that
            model's experiment as a dict); ``None``: every model starts from scratch.
    """

    name: str
    settings: type
    default_backbone: Callable[[str], str]
    epochs: Callable[[str, str, str], int]
    recipe: Callable[[Any, str, int], Recipe]
    network: Callable[..., nn.Module]
    loss: Callable[..., nn.Module]
    threshold: float = 0.0
    finetune: Callable[..., nn.Module] | None = None


@dataclass(frozen=True)
class FittedSpec:
    """A method fitted on features (LSH, ITQ, KSH): ``make(bits, seed)`` gives an unfitted
    hasher with ``fit`` / ``encode``; ``supervised`` ones are fitted with labels."""

    name: str
    make: Callable[[int, int], Any]
    supervised: bool = False


def code_layer_network(bits: int, latent_bn: bool, recipe: Recipe,
                       backbone: str | nn.Module = "small",
                       feature_dim: int | None = None) -> nn.Module:
    """The network of DSH / DPAH / OrthoHash on a shared backbone:
    :class:`~hashlib_edu.backbones.BackboneWithCodeLayer` -- the small backbone (BatchNorm and
    dropout after pooling as ``recipe.extra`` says) when ``backbone`` is ``"small"``, else
    the module ``backbone`` with ``(n, feature_dim)`` outputs."""
    from .backbones import BackboneWithCodeLayer

    if isinstance(backbone, str):
        if backbone != "small":
            raise ValueError(f"a code layer is built on the 'small' backbone or a module; "
                             f"got {backbone!r}.")
        return BackboneWithCodeLayer(bits, latent_bn=latent_bn,
                                     batchnorm=recipe.extra.get("batchnorm", True),
                                     conv_dropout=recipe.extra.get("conv_dropout", 0.0))
    return BackboneWithCodeLayer(bits, latent_bn=latent_bn, backbone=backbone,
                                 feature_dim=feature_dim)


def code_layer_method(name: str, settings: type, epochs: dict[str, dict[str, int]],
                      recipe: Callable[[int], Recipe]) -> MethodSpec:
    """The spec of a method that trains a backbone + code layer (BatchNorm on it when
    ``settings.latent_bn``) with the loss ``settings.loss(bits, n_classes, seed)``, on the small
    backbone by default, for ``epochs[protocol][profile]`` epochs with ``recipe(epochs)``."""
    return MethodSpec(
        name=name, settings=settings, default_backbone=lambda protocol: "small",
        epochs=lambda backbone, protocol, profile: epochs[protocol][profile],
        recipe=lambda method_settings, backbone, n_epochs: recipe(n_epochs),
        network=lambda bits, n_classes, method_settings, method_recipe, backbone, dim:
            code_layer_network(bits, method_settings.latent_bn, method_recipe, backbone, dim),
        loss=lambda bits, n_classes, method_settings, seed, method_recipe:
            method_settings.loss(bits, n_classes, seed))
