"""hashlib_edu.models: parameter counts, shapes, codes, and a smoke training of CNNBH."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hashlib_edu.data import make_synthetic
from hashlib_edu.experiments import ProtocolData, Recipe, load_protocol, run_name, train_model
from hashlib_edu.models import (
    CNNBH_DROPOUT,
    CNNBHNet,
    DSHNet,
    HashNet,
    SmallBackbone,
    count_parameters,
)
from hashlib_edu.profiles import checkpoints_dir
from hashlib_edu.training import encode, seed_everything
from hashlib_edu.transforms import prepare


def _batch(n=3, size=32):
    return torch.randn(n, 3, size, size)


def test_cnnbh_parameter_count():
    # the paper's "125K": conv stack 75,872 + knob 1024*48+48 + classifier 48*10+10
    assert count_parameters(CNNBHNet(48, batchnorm=False)) == 125_562
    assert count_parameters(CNNBHNet(48, batchnorm=True)) == 126_074  # + 2 x 256 BN params
    assert count_parameters(CNNBHNet(12, batchnorm=False)) == 125_562 - 36 * 1024 - 36 * 11


def test_count_parameters_trainable_only():
    net = CNNBHNet(48, batchnorm=False)
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    assert count_parameters(net) == 1024 * 48 + 48 + 48 * 10 + 10


def test_cnnbh_dropout_table():
    assert CNNBH_DROPOUT == {8: 0.0, 12: 0.2, 16: 0.3, 24: 0.5, 32: 0.5, 40: 0.5, 48: 0.5}
    for k, p in CNNBH_DROPOUT.items():
        net = CNNBHNet(k)
        assert net.dropout_p == p and net.dropout.p == p
    assert CNNBHNet(64).dropout_p == 0.5  # not in the table
    assert CNNBHNet(12, dropout=0.0).dropout.p == 0.0


def test_shapes():
    torch.manual_seed(0)
    x = _batch()
    backbone = SmallBackbone()
    assert SmallBackbone.out_features == 1024 and backbone(x).shape == (3, 1024)

    net = CNNBHNet(24, n_classes=7).eval()
    assert net(x).shape == (3, 7) and net.embed(x).shape == (3, 24)

    dsh = DSHNet(12).eval()
    assert dsh(x).shape == (3, 12) and torch.equal(dsh(x), dsh.embed(x))
    assert count_parameters(DSHNet(12, batchnorm=False)) == (
        (3 * 25 * 32 + 32) + (32 * 25 * 32 + 32) + (32 * 25 * 64 + 64)
        + (1024 * 500 + 500) + (500 * 12 + 12))

    hn = HashNet(16, latent_bn=True).eval()
    assert hn(x).shape == (3, 16) and torch.equal(hn(x), hn.embed(x))
    custom = HashNet(8, backbone=nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 20)),
                     feature_dim=20)
    assert custom(x).shape == (3, 8)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        CNNBHNet(12)(_batch(size=28))
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        CNNBHNet(12).embed(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        SmallBackbone()(torch.randn(3, 32, 32))
    for cls in (CNNBHNet, DSHNet, HashNet):
        with pytest.raises(ValueError, match="n_bits"):
            cls(0)
    with pytest.raises(ValueError, match="feature_dim"):
        HashNet(8, backbone=nn.Flatten())


def test_encode_gives_signs_of_knob(synthetic):
    torch.manual_seed(0)
    net = CNNBHNet(12)
    net.train()
    images = synthetic.images[:40]
    codes = encode(net, images, batch_size=16)
    assert codes.shape == (40, 12) and codes.dtype == np.int8
    assert net.training  # encode does not leave the model in eval mode
    net.eval()
    with torch.no_grad():
        knob = net.knob(net.backbone(prepare(torch.from_numpy(images))))
    np.testing.assert_array_equal(codes, np.where(knob.numpy() >= 0, 1, -1))


# ---------------------------------------------------------------- smoke training


def _brute_force_map(q_codes, db_codes, q_labels, db_labels) -> float:
    """mAP@all of Hamming ranking, ties in database order."""
    aps = []
    for code, label in zip(q_codes, q_labels, strict=True):
        dist = (code[None, :] != db_codes).sum(1)
        rel = db_labels[np.argsort(dist, kind="stable")] == label
        if not rel.any():
            aps.append(0.0)
            continue
        hits = np.cumsum(rel)
        aps.append(float(np.mean(hits[rel] / (np.flatnonzero(rel) + 1))))
    return float(np.mean(aps))


def _map(q_codes, db_codes, q_labels, db_labels) -> float:
    brute = _brute_force_map(q_codes, db_codes, q_labels, db_labels)
    try:
        from hashlib_edu.metrics import mean_average_precision
    except ImportError:
        return brute
    value = mean_average_precision(q_codes, db_codes, q_labels, db_labels)
    assert value == pytest.approx(brute, abs=1e-9)
    return value


def test_brute_force_map():
    labels = np.array([0, 1, 0])
    db = np.array([[1, 1], [-1, -1], [1, -1]])
    # query (1, 1): ranking [0 (d0), 2 (d1), 1 (d2)] -> relevant at ranks 1, 2 -> AP 1
    assert _brute_force_map(np.array([[1, 1]]), db, np.array([0]), labels) == 1.0
    # query (-1, -1): distances (2, 0, 1) -> ranking [1, 2, 0] -> relevant at ranks 2, 3
    assert _brute_force_map(np.array([[-1, -1]]), db, np.array([0]), labels) == pytest.approx(
        (1 / 2 + 2 / 3) / 2)


@pytest.fixture(scope="module")
def smoke_data():
    """4 classes x 600 images: enough for cifar10-1k's per-class draw, small under smoke."""
    return make_synthetic(n_per_class=600, n_classes=4, size=32, seed=1)


def test_load_protocol_on_a_dataset(smoke_data):
    data = load_protocol("cifar10-1k", dataset=smoke_data, seed=0)
    assert isinstance(data, ProtocolData) and data.profile == "smoke"
    sizes = data.sizes()
    assert sizes == {"query": 100, "train": 500, "database": 2000}
    assert np.intersect1d(data.query_idx, data.db_idx).size == 0
    assert np.all(np.isin(data.train_idx, data.db_idx))
    for part in ("query", "train"):
        assert np.all(np.bincount(data.part_labels(part), minlength=4) == sizes[part] // 4)
    assert data.images("train").shape == (500, 32, 32, 3)
    with pytest.raises(ValueError, match="part"):
        data.images("test")
    again = load_protocol("cifar10-1k", dataset=smoke_data, seed=0)
    for a, b in zip(data.split, again.split, strict=True):
        np.testing.assert_array_equal(a, b)
    full = load_protocol("cifar10-1k", profile="quick", dataset=smoke_data, seed=0)
    assert full.sizes() == {"query": 400, "train": 2000, "database": 2000}


def test_cnnbh_smoke_training_beats_chance(smoke_data, tmp_path):
    data = load_protocol("cifar10-1k", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=2, lr=1e-2, batch_size=32, augment=False)
    name = run_name("cnnbh", 12, data, recipe, seed=0)
    assert name.startswith("cifar10-1k-cnnbh-12-seed0-")

    seed_everything(0)
    model = CNNBHNet(12, n_classes=4)
    q_labels, db_labels = data.part_labels("query"), data.part_labels("database")
    before = _map(encode(model, data.images("query")), encode(model, data.images("database")),
                  q_labels, db_labels)
    hist = train_model(model, nn.CrossEntropyLoss(), data, recipe, name=name, seed=0,
                       device="cpu", progress=False)
    assert hist.epochs == 2 and hist.loss[-1] < hist.loss[0]
    after = _map(encode(model, data.images("query")), encode(model, data.images("database")),
                 q_labels, db_labels)
    chance = 0.25  # 4 balanced classes
    assert after > chance + 0.35, (before, after)  # ~1.0 here; random codes give ~0.4
    assert after > before + 0.2, (before, after)

    # the checkpoint went to the temporary smoke output, and a finished run is reloaded
    ckpt = checkpoints_dir() / f"{name}.pt"
    assert ckpt.is_file() and ckpt.is_relative_to(tmp_path)
    fresh = CNNBHNet(12, n_classes=4)
    again = train_model(fresh, nn.CrossEntropyLoss(), data, recipe, name=name, seed=0,
                        device="cpu", progress=False)
    assert again.loss == hist.loss
    for (k, a), b in zip(fresh.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


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
    from hashlib_edu.models import pretrained_backbone, pretrained_hashnet

    _offline_alexnet(monkeypatch)
    for call in (lambda: pretrained_backbone("alexnet"), lambda: pretrained_hashnet(48)):
        with pytest.raises(RuntimeError, match="internet access.*quick"):
            call()
    with pytest.raises(ValueError, match="Unknown backbone"):
        pretrained_backbone("vgg-nonexistent")


def test_imagenet_input_resizes_and_renormalizes():
    from hashlib_edu.models import IMAGENET_MEAN, IMAGENET_STD, ImageNetInput

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


def test_pretrained_hashnet_shapes(monkeypatch):
    from hashlib_edu.models import ImageNetInput, pretrained_hashnet

    _random_alexnet(monkeypatch)
    net = pretrained_hashnet(16, "alexnet", latent_bn=True, input_size=64)
    assert isinstance(net.backbone[0], ImageNetInput)
    assert net.hash.in_features == 4096 and isinstance(net.latent_bn, nn.BatchNorm1d)
    net.eval()
    assert net(_batch(2)).shape == (2, 16)


def test_pretrained_hashnet_trains_with_the_pretrained_recipe(monkeypatch, smoke_data):
    """The paper profile's path end to end on CPU (random AlexNet weights, 64x64 inputs)."""
    from hashlib_edu.losses import OrthoHashLoss
    from hashlib_edu.models import pretrained_hashnet
    from hashlib_edu.recipes import pretrained_recipe

    _random_alexnet(monkeypatch)
    full = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    data = ProtocolData(smoke_data, "cifar10-1k", full.query_idx[:16], full.train_idx[::8],
                        full.db_idx[:16], "smoke")  # 63 training images: seconds on a CPU
    seed_everything(0)
    net = pretrained_hashnet(8, "alexnet", latent_bn=True, input_size=64)
    recipe = pretrained_recipe(1)
    recipe.batch_size = 32
    backbone_before = net.backbone[1].features[0].weight.detach().clone()
    hist = train_model(net, OrthoHashLoss(8, 4), data, recipe, name="pretrained-smoke",
                       device="cpu", progress=False)
    assert hist.epochs == 1 and np.isfinite(hist.loss[0])
    assert not torch.equal(net.backbone[1].features[0].weight, backbone_before)
    codes = encode(net, data.images("query"))
    assert codes.shape == (len(data.query_idx), 8) and set(np.unique(codes)) <= {-1, 1}
