"""Networks of the course: the CNNBH CIFAR-10 net (also the shared small backbone),
DSH's CIFAR net, and a hash head for the later methods.

Every hashing model has ``forward(x)`` (what its loss takes) and ``embed(x)`` (the
real-valued code layer, ``(n, k)``); ``hashlib_edu.training.encode`` binarizes
``embed`` with ``sign``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .transforms import CIFAR10_MEAN, CIFAR10_STD

__all__ = [
    "CNNBH_DROPOUT",
    "SmallBackbone",
    "CNNBHNet",
    "HashNet",
    "DSHNet",
    "count_parameters",
    "ImageNetInput",
    "PRETRAINED_BACKBONES",
    "pretrained_backbone",
    "pretrained_hashnet",
]

#: Channel statistics torchvision's ImageNet weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: CNNBH Table 2: final-dropout probability p by code length k.
CNNBH_DROPOUT: dict[int, float] = {8: 0.0, 12: 0.2, 16: 0.3, 24: 0.5, 32: 0.5, 40: 0.5, 48: 0.5}


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _conv(c_in: int, c_out: int, k: int, batchnorm: bool) -> list[nn.Module]:
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
            *_conv(3, 32, 3, batchnorm), *_conv(32, 32, 1, batchnorm), *pool(),
            *_conv(32, 32, 3, batchnorm), *_conv(32, 32, 3, batchnorm), *pool(),
            *_conv(32, 64, 3, batchnorm), *_conv(64, 64, 3, batchnorm), *pool(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2:] != (32, 32):
            raise ValueError(f"SmallBackbone takes (n, 3, 32, 32) images; got {tuple(x.shape)}.")
        return self.features(x).flatten(1)


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

    Shapes: ``forward: (n, 3, 32, 32) -> (n, n_classes)`` logits; ``embed -> (n, k)``.
    """

    def __init__(self, n_bits: int = 48, n_classes: int = 10, dropout: float | None = None,
                 batchnorm: bool = True, conv_dropout: float = 0.5) -> None:
        super().__init__()
        if n_bits <= 0:
            raise ValueError(f"n_bits must be positive; got {n_bits}.")
        if dropout is None:
            dropout = CNNBH_DROPOUT.get(n_bits, 0.5)
        self.n_bits, self.dropout_p = n_bits, dropout
        self.backbone = SmallBackbone(batchnorm=batchnorm, dropout=conv_dropout)
        self.knob = nn.Linear(SmallBackbone.out_features, n_bits)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_bits, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Knob activations ``(n, k)`` (real-valued; codes are their signs)."""
        return self.knob(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x)))


class HashNet(nn.Module):
    """Shared small backbone + linear hash layer: the network of DSH/DPAH/OrthoHash
    comparisons on one backbone.

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


class DSHNet(nn.Module):
    """DSH's CIFAR-10 network (Liu et al., CVPR 2016).

    Three 5x5 convolutions (32, 32, 64 filters), each followed by 3x3 stride-2
    pooling (max, then average, average as in DSH's Caffe model), then FC 500 and FC k.
    Optional BatchNorm after each convolution (our change).

    Shapes: ``(n, 3, 32, 32) -> (n, k)`` real-valued outputs.
    """

    def __init__(self, n_bits: int = 12, batchnorm: bool = True) -> None:
        super().__init__()
        if n_bits <= 0:
            raise ValueError(f"n_bits must be positive; got {n_bits}.")
        self.n_bits = n_bits
        self.features = nn.Sequential(
            *_conv(3, 32, 5, batchnorm), nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv(32, 32, 5, batchnorm), nn.AvgPool2d(3, 2, ceil_mode=True),
            *_conv(32, 64, 5, batchnorm), nn.AvgPool2d(3, 2, ceil_mode=True),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, 500), nn.ReLU(inplace=True))
        self.hash = nn.Linear(500, n_bits)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.hash(self.fc(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


class ImageNetInput(nn.Module):
    """Turn the course's batches into what an ImageNet network expects: undo the CIFAR-10
    normalization, resize bilinearly to ``size x size`` and normalize with ImageNet statistics.

    Shapes: ``(n, 3, h, w)`` CIFAR-normalized -> ``(n, 3, size, size)``.
    """

    def __init__(self, size: int = 224) -> None:
        super().__init__()
        if size < 32:
            raise ValueError(f"size must be at least 32; got {size}.")
        self.size = size
        for name, value in (("cifar_mean", CIFAR10_MEAN), ("cifar_std", CIFAR10_STD),
                            ("imagenet_mean", IMAGENET_MEAN), ("imagenet_std", IMAGENET_STD)):
            self.register_buffer(name, torch.tensor(value).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"ImageNetInput takes (n, 3, h, w) batches; got {tuple(x.shape)}.")
        x = x * self.cifar_std + self.cifar_mean
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - self.imagenet_mean) / self.imagenet_std


#: The ImageNet-pretrained torchvision backbones :func:`pretrained_backbone` builds:
#: name -> (torchvision builder, weights enum, feature dimension).
_PRETRAINED = {
    "alexnet": ("alexnet", "AlexNet_Weights", 4096),
    "resnet50": ("resnet50", "ResNet50_Weights", 2048),
}
#: Their names.
PRETRAINED_BACKBONES = tuple(_PRETRAINED)


def pretrained_backbone(name: str = "alexnet") -> tuple[nn.Module, int]:
    """A torchvision ImageNet backbone for the ``paper`` profile, as ``(module, feature_dim)``.

    Inputs must be resized to 224x224 by the caller. Weights are downloaded by
    torchvision; offline this raises a clear ``RuntimeError`` -- never a silent
    fallback to random weights.
    """
    import torchvision

    if name not in _PRETRAINED:
        raise ValueError(f"Unknown backbone {name!r}; choose from {list(PRETRAINED_BACKBONES)}.")
    builder_name, weights_name, dim = _PRETRAINED[name]
    build = getattr(torchvision.models, builder_name)
    weights = getattr(torchvision.models, weights_name).DEFAULT
    try:
        model = build(weights=weights)
    except Exception as exc:
        raise RuntimeError(
            f"Could not download the pretrained {name} weights ({exc.__class__.__name__}: {exc}). "
            "The 'paper' profile needs internet access (e.g. Colab) for ImageNet weights; "
            "offline, use the 'quick' profile, which trains the small backbone from scratch."
        ) from exc
    if name == "alexnet":
        model.classifier = nn.Sequential(*list(model.classifier.children())[:-1])
    else:
        model.fc = nn.Identity()
    return model, dim


def pretrained_hashnet(n_bits: int, name: str = "alexnet", latent_bn: bool = False,
                       input_size: int = 224) -> HashNet:
    """``HashNet(n_bits)`` on an ImageNet-pretrained torchvision backbone (the papers' setting
    for DPAH and OrthoHash; the ``paper`` profile of notebooks 05 and 06).

    ``model.backbone`` is ``ImageNetInput(input_size)`` followed by the pretrained network
    (its ImageNet classifier removed), so the model takes the course's usual 32x32 batches.
    Train the backbone with a smaller learning rate than the hash layer (the
    :func:`hashlib_edu.recipes.pretrained_recipe` does: x0.1).

    Raises:
        RuntimeError: the weights cannot be downloaded (offline) -- never a silent fallback
            to random weights.
    """
    backbone, dim = pretrained_backbone(name)
    return HashNet(n_bits, latent_bn=latent_bn,
                   backbone=nn.Sequential(ImageNetInput(input_size), backbone), feature_dim=dim)
