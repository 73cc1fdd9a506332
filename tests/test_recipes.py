"""Named training recipes: DSH training (notebook 04) beats chance on synthetic data,
finetuning copies every layer but the last, and checkpoints are told apart."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hashlib_edu.data import make_synthetic
from hashlib_edu.experiments import Recipe, load_protocol
from hashlib_edu.losses import DSHLoss, DSHSigmoidLoss
from hashlib_edu.metrics import mean_average_precision
from hashlib_edu.models import DSHNet, HashNet
from hashlib_edu.recipes import DSH_EPOCHS, dsh_recipe, finetune_init, train_dsh
from hashlib_edu.training import encode, seed_everything


@pytest.fixture(scope="module")
def smoke_data():
    return make_synthetic(n_per_class=600, n_classes=4, size=32, seed=1)


def _map(model, data) -> float:
    return mean_average_precision(encode(model, data.images("query")),
                                  encode(model, data.images("database")),
                                  data.part_labels("query"), data.part_labels("database"))


def test_dsh_recipe_defaults():
    r = dsh_recipe(26)
    assert (r.epochs, r.lr, r.optimizer, r.schedule, r.augment) == (26, 2e-3, "adamw",
                                                                     "onecycle", True)
    assert DSH_EPOCHS["cifar10-dsh"]["smoke"] == 1 and DSH_EPOCHS["cifar10-1k"]["quick"] > 1


def test_dsh_smoke_training_beats_chance(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=2, lr=3e-3, batch_size=32, augment=False, extra={"batchnorm": True})
    model, hist = train_dsh(data, 12, DSHLoss(12), recipe, seed=0, device="cpu",
                            progress=False)
    assert isinstance(model, DSHNet) and hist.epochs == 2
    assert _map(model, data) > 0.25 + 0.3  # 4 balanced classes: chance 0.25


def test_sigmoid_variant_trains_and_gets_its_own_checkpoint(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=1, lr=3e-3, batch_size=32, augment=False)
    _, h1 = train_dsh(data, 12, DSHLoss(12), recipe, seed=0, progress=False)
    _, h2 = train_dsh(data, 12, DSHSigmoidLoss(12, margin=2), recipe, seed=0, progress=False)
    assert h1.loss != h2.loss  # different loss -> different checkpoint, not a reload


def test_finetune_init_copies_all_but_the_last_layer():
    torch.manual_seed(0)
    source = DSHNet(12)
    model = finetune_init(source, 24)
    src, dst = source.state_dict(), model.state_dict()
    for key, value in dst.items():
        if key.startswith("hash."):
            assert value.shape[0] == 24
        else:
            assert torch.equal(value, src[key]), key
    with pytest.raises(ValueError, match="same layers"):
        finetune_init(DSHNet(12, batchnorm=False), 24)


def test_finetuned_training_starts_from_the_source(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=1, lr=3e-3, batch_size=32, augment=False)
    base, _ = train_dsh(data, 12, DSHLoss(12), recipe, seed=0, progress=False)
    ft, hist = train_dsh(data, 24, DSHLoss(24), recipe, method="dsh_ft", seed=0,
                         init_from=base, progress=False)
    assert ft.hash.out_features == 24 and hist.epochs == 1
    # the first convolution moved only one epoch away from the source's weights
    moved = (ft.features[0].weight - base.features[0].weight).abs().mean()
    fresh = (DSHNet(24).features[0].weight - base.features[0].weight).abs().mean()
    assert moved < fresh


def test_orthohash_and_pretrained_recipes():
    from hashlib_edu.recipes import (
        ORTHOHASH_EPOCHS,
        cnnbh_recipe,
        orthohash_recipe,
        pretrained_recipe,
    )

    a, c = orthohash_recipe(60), cnnbh_recipe(60)
    # CNNBH's optimizer and schedule, without its label smoothing
    for field in ("lr", "weight_decay", "batch_size", "optimizer", "schedule", "augment"):
        assert getattr(a, field) == getattr(c, field)
    assert "label_smoothing" not in a.extra
    assert ORTHOHASH_EPOCHS["smoke"] == 1 and ORTHOHASH_EPOCHS["quick"] == 60
    p = pretrained_recipe(100)
    assert (p.lr, p.optimizer, p.batch_size, p.extra["backbone_lr_mult"]) == (1e-4, "adam", 256,
                                                                             0.1)


def test_loss_parameters_get_no_weight_decay(smoke_data):
    """DPAH's anchors are positions, not weights: weight decay must not pull them to 0."""
    from hashlib_edu.losses import DPAHLoss
    from hashlib_edu.recipes import train_hashnet

    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    # plain SGD with strong decay and a loss whose gradient is ~0: only decay moves weights
    recipe = Recipe(epochs=1, lr=0.1, weight_decay=0.5, optimizer="sgd", schedule="constant",
                    batch_size=64, augment=False, extra={"batchnorm": True})
    loss = DPAHLoss(8, 4, intra_weight=0.0, quant_weight=0.0, scale=1e-6)
    before = loss.anchors.detach().clone()
    model, _ = train_hashnet(data, 8, loss, recipe, method="dpah_wd_test", seed=0, device="cpu",
                             progress=False)
    assert torch.allclose(loss.anchors.detach(), before, atol=1e-4)
    # ... while the network's weights did decay (so the check above could fail)
    seed_everything(0)  # train_hashnet's initialization
    initial = HashNet(8, batchnorm=True, conv_dropout=0.5)
    ratio = float(model.hash.weight.detach().norm() / initial.hash.weight.detach().norm())
    assert ratio < 0.9, ratio


def test_backbone_learning_rate_multiplier(smoke_data):
    from hashlib_edu.experiments import _parameter_groups, _scheduler
    from hashlib_edu.models import HashNet
    from hashlib_edu.recipes import pretrained_recipe

    model = HashNet(8)
    recipe = pretrained_recipe(2)
    groups = _parameter_groups(model, recipe)
    assert [g.get("lr") for g in groups] == [pytest.approx(1e-5), None]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    opt = torch.optim.Adam(groups, lr=recipe.lr)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(1e-5), 1e-4]
    recipe.schedule = "onecycle"  # each group peaks at its own rate
    sched = _scheduler(opt, recipe, steps_per_epoch=4)
    seen = []
    for _ in range(8):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for backbone_lr, head_lr in seen:
        assert backbone_lr == pytest.approx(0.1 * head_lr)
    assert max(head for _, head in seen) == pytest.approx(1e-4, rel=0.05)
    with pytest.raises(ValueError, match="backbone"):
        _parameter_groups(nn.Linear(2, 2), recipe)


def test_train_hashnet_pretrained_offline_fails_clearly(smoke_data, monkeypatch):
    import urllib.error

    import torchvision

    from hashlib_edu.losses import OrthoHashLoss
    from hashlib_edu.recipes import pretrained_recipe, train_hashnet

    def fail(weights=None, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models, "alexnet", fail)
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    with pytest.raises(RuntimeError, match="pretrained alexnet weights"):
        train_hashnet(data, 8, OrthoHashLoss(8, 4), pretrained_recipe(1), method="orthohash",
                      latent_bn=True, pretrained="alexnet", device="cpu", progress=False)


def test_orthohash_course_settings_and_overrides():
    from hashlib_edu.losses import OrthoHashLoss
    from hashlib_edu.recipes import ORTHOHASH_SETTINGS, orthohash_loss
    from hashlib_edu.targets import make_targets

    loss = orthohash_loss(48, 10, seed=3)
    assert isinstance(loss, OrthoHashLoss) and loss.margin == ORTHOHASH_SETTINGS["margin"]
    assert torch.equal(loss.targets, make_targets(ORTHOHASH_SETTINGS["targets"], 10, 48, seed=3))
    paper = orthohash_loss(48, 10, targets="bernoulli", margin=0.2)
    assert (paper.margin, paper.target_name, paper.scale) == (0.2, "bernoulli", 48 ** 0.5)


def test_choose_backbone_defaults_per_profile_and_rejects_unknown_names():
    from hashlib_edu.recipes import choose_backbone, hashnet_recipe, pretrained_recipe

    quick = choose_backbone(None, "quick", small_recipe=hashnet_recipe)
    assert quick == ("small", None, hashnet_recipe)
    assert "from scratch" in quick.describe()
    paper = choose_backbone(None, "paper", small_recipe=hashnet_recipe)
    assert paper == ("alexnet", "alexnet", pretrained_recipe)
    assert "ImageNet-pretrained" in paper.describe()
    assert choose_backbone("small", "paper", small_recipe=hashnet_recipe).pretrained is None
    assert choose_backbone("resnet50", "smoke", small_recipe=hashnet_recipe).make_recipe(3).epochs == 3
    with pytest.raises(ValueError, match="BACKBONE"):
        choose_backbone("vgg16", "quick", small_recipe=hashnet_recipe)


def test_dpah_course_settings_and_overrides():
    import math

    from hashlib_edu.losses import DPAHLoss
    from hashlib_edu.recipes import DPAH_SETTINGS, dpah_loss, dpah_scale

    loss = dpah_loss(48)
    assert (loss.init, loss.init_magnitude) == (DPAH_SETTINGS["init"], DPAH_SETTINGS["init_magnitude"])
    assert loss.scale == pytest.approx(2 / math.sqrt(48)) == dpah_scale(48)
    assert loss.alpha == DPAHLoss(48, 10).alpha  # the loss's own default
    # s = 2/sqrt(K) turns -s d(b, theta) into sqrt(K) cos(b, theta) - sqrt(K) on binary codes
    b, theta = torch.sign(torch.randn(5, 48)), torch.sign(torch.randn(3, 48))
    d = (48 - b @ theta.T) / 2
    cos = torch.nn.functional.cosine_similarity(b[:, None], theta[None], dim=2)
    assert torch.allclose(-dpah_scale(48) * d, math.sqrt(48) * (cos - 1), atol=1e-4)
    paper = dpah_loss(32, init="normal", scale=1.0, alpha=1.0)
    assert (paper.init, paper.scale, paper.alpha) == ("normal", 1.0, 1.0)
