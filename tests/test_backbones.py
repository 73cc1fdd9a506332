"""hashlib_edu.backbones: parameter counts, shapes, backbone + code layer, pretrained backbones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hashlib_edu.backbones import BackboneWithCodeLayer, SmallBackbone, count_parameters
from hashlib_edu.data import ProtocolData, load_protocol
from hashlib_edu.training import encode, prepare, seed_everything, train_model


def _batch(n=3, size=32):
    return torch.randn(n, 3, size, size)


def test_count_parameters_trainable_only():
    from hashlib_edu.methods.cnnbh import CNNBHNet

    net = CNNBHNet(48, batchnorm=False)
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    assert count_parameters(net) == 1024 * 48 + 48 + 48 * 10 + 10


def test_shapes():
    torch.manual_seed(0)
    x = _batch()
    backbone = SmallBackbone()
    assert SmallBackbone.out_features == 1024 and backbone(x).shape == (3, 1024)

    hn = BackboneWithCodeLayer(16, latent_bn=True).eval()
    assert hn(x).shape == (3, 16) and torch.equal(hn(x), hn.embed(x))
    custom = BackboneWithCodeLayer(8, backbone=nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 20)),
                                   feature_dim=20)
    assert custom(x).shape == (3, 8)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        SmallBackbone()(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="n_bits"):
        BackboneWithCodeLayer(0)
    with pytest.raises(ValueError, match="feature_dim"):
        BackboneWithCodeLayer(8, backbone=nn.Flatten())


# --------------------------------------------------------------- pretrained backbone (paper)


def _offline_alexnet(monkeypatch):
    """torchvision's AlexNet builder as it behaves here: the weight download fails."""
    import urllib.error

    import torchvision

    def fail(weights=None, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models, "alexnet", fail)


def _random_alexnet(monkeypatch):
    """A stand-in for the download: AlexNet with random weights (only shapes are tested)."""
    import torchvision

    build = torchvision.models.alexnet
    monkeypatch.setattr(torchvision.models, "alexnet",
                        lambda weights=None, **kwargs: build(weights=None, **kwargs))


def test_pretrained_backbone_offline_fails_clearly(monkeypatch):
    from hashlib_edu.backbones import pretrained_backbone, pretrained_with_code_layer

    _offline_alexnet(monkeypatch)
    for call in (lambda: pretrained_backbone("alexnet"), lambda: pretrained_with_code_layer(48)):
        with pytest.raises(RuntimeError, match="internet access.*quick"):
            call()
    with pytest.raises(ValueError, match="Unknown backbone"):
        pretrained_backbone("vgg-nonexistent")


def test_imagenet_input_resizes_and_renormalizes():
    from hashlib_edu.backbones import IMAGENET_MEAN, IMAGENET_STD, ImageNetInput

    images = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    x = prepare(images)  # CIFAR-normalized, as every batch of the course
    out = ImageNetInput(64)(x)
    assert out.shape == (2, 3, 64, 64)
    # a constant image stays constant; its value is renormalized with ImageNet statistics
    grey = torch.full((1, 32, 32, 3), 128, dtype=torch.uint8)
    y = ImageNetInput(40)(prepare(grey))
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(y[0, :, 5, 7], expected, atol=1e-5)
    assert torch.allclose(y.amax(dim=(2, 3)), y.amin(dim=(2, 3)), atol=1e-5)
    with pytest.raises(ValueError, match="at least 32"):
        ImageNetInput(16)
    with pytest.raises(ValueError, match=r"\(n, 3, h, w\)"):
        ImageNetInput()(torch.zeros(2, 32, 32))


def test_pretrained_with_code_layer_shapes(monkeypatch):
    from hashlib_edu.backbones import ImageNetInput, pretrained_with_code_layer

    _random_alexnet(monkeypatch)
    net = pretrained_with_code_layer(16, "alexnet", latent_bn=True, input_size=64)
    assert isinstance(net.backbone[0], ImageNetInput)
    assert net.hash.in_features == 4096 and isinstance(net.latent_bn, nn.BatchNorm1d)
    net.eval()
    assert net(_batch(2)).shape == (2, 16)


def test_pretrained_with_code_layer_trains_with_the_pretrained_recipe(monkeypatch, smoke_data):
    """The paper profile's path end to end on CPU (random AlexNet weights, 64x64 inputs)."""
    from hashlib_edu.backbones import pretrained_with_code_layer
    from hashlib_edu.methods.orthohash import OrthoHashLoss
    from hashlib_edu.recipes import pretrained_recipe

    _random_alexnet(monkeypatch)
    full = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    data = ProtocolData(smoke_data, "cifar10-1k", full.query_idx[:16], full.train_idx[::8],
                        full.db_idx[:16], "smoke")  # 63 training images: seconds on a CPU
    seed_everything(0)
    net = pretrained_with_code_layer(8, "alexnet", latent_bn=True, input_size=64)
    recipe = pretrained_recipe(1)
    recipe.batch_size = 32
    backbone_before = net.backbone[1].features[0].weight.detach().clone()
    hist = train_model(net, OrthoHashLoss(8, 4), data, recipe, name="pretrained-smoke",
                       device="cpu", progress=False)
    assert hist.epochs == 1 and np.isfinite(hist.loss[0])
    assert not torch.equal(net.backbone[1].features[0].weight, backbone_before)
    codes = encode(net, data.images("query"))
    assert codes.shape == (len(data.query_idx), 8) and set(np.unique(codes)) <= {-1, 1}
