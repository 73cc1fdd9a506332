"""hashlib_edu.methods.dsh: the DSH losses (hand computations, the pairwise definition), DSH's
CIFAR network, and its training (notebook 04): beats chance on synthetic data, finetuning copies
every layer but the last, and checkpoints are told apart."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hashlib_edu import Experiment, run
from hashlib_edu.backbones import count_parameters
from hashlib_edu.data import load_protocol
from hashlib_edu.methods.dsh import (
    DSH_EPOCHS,
    DSHLoss,
    DSHNet,
    DSHSigmoidLoss,
    dsh_loss,
    dsh_recipe,
    dsh_sigmoid_loss,
    finetune_init,
)
from hashlib_edu.metrics import mean_average_precision
from hashlib_edu.recipes import Recipe
from hashlib_edu.training import encode

DTYPE = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


# --------------------------------------------------------------------------- loss

# Three items, k = 2, margin m = 3, alpha = 0.1:
#   b0 = ( 1.0, 1) class 0      b1 = (0.5, 1) class 0      b2 = (-1, 1) class 1
# pair (0,1) similar:     D = 0.5^2 + 0   = 0.25  ->  1/2 * 0.25         = 0.125
# pair (0,2) dissimilar:  D = 2^2   + 0   = 4     ->  1/2 * max(3-4, 0)  = 0      (beyond margin)
# pair (1,2) dissimilar:  D = 1.5^2 + 0   = 2.25  ->  1/2 * max(3-2.25,0) = 0.375 (inside margin)
# contrastive mean = (0.125 + 0 + 0.375) / 3 = 1/6
# regularizer r_i = || |b_i| - 1 ||_1: r0 = 0, r1 = 0.5, r2 = 0
# per pair alpha (r_i + r_j): 0.05, 0, 0.05 -> mean 0.1/3 = 1/30  (= 2 alpha mean_i r_i)
# total = 1/6 + 1/30 = 0.2
DSH_X = [[1.0, 1.0], [0.5, 1.0], [-1.0, 1.0]]
DSH_Y = [0, 0, 1]


def test_dsh_hand_computation():
    loss = DSHLoss(2, alpha=0.1, margin=3.0)
    assert loss(t(DSH_X), torch.tensor(DSH_Y)).item() == pytest.approx(0.2, abs=1e-12)
    assert DSHLoss(2, alpha=0.0, margin=3.0)(t(DSH_X), torch.tensor(DSH_Y)).item() == (
        pytest.approx(1 / 6, abs=1e-12))


def test_dsh_default_margin_is_2k():
    assert DSHLoss(12).margin == 24.0
    assert DSHLoss(12).alpha == 0.01
    x = torch.randn(5, 12, dtype=DTYPE)
    y = torch.tensor([0, 1, 0, 2, 1])
    assert dsh_loss(x, y) == pytest.approx(dsh_loss(x, y, 0.01, 24.0).item())


def test_dsh_matches_pairwise_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=g, dtype=DTYPE) * 1.5
    y = torch.tensor([0, 1, 1, 2, 0, 2, 1])
    alpha, m = 0.05, 6.0
    total, pairs = 0.0, 0
    for i in range(7):
        for j in range(i + 1, 7):
            d = float(((x[i] - x[j]) ** 2).sum())
            dissimilar = float(y[i] != y[j])
            reg = float((x[i].abs() - 1).abs().sum() + (x[j].abs() - 1).abs().sum())
            total += 0.5 * (1 - dissimilar) * d + 0.5 * dissimilar * max(m - d, 0.0) + alpha * reg
            pairs += 1
    assert dsh_loss(x, y, alpha, m).item() == pytest.approx(total / pairs, rel=1e-10)


def test_dsh_alpha_gradient_points_toward_pm1():
    x = t([[0.5, -0.5, 1.5, -1.5], [0.5, -0.5, 1.5, -1.5]]).requires_grad_()
    y = torch.tensor([0, 0])  # one similar pair at distance 0: only the alpha term has a gradient
    alpha = 0.1
    DSHLoss(4, alpha=alpha)(x, y).backward()
    # descent direction -grad: 0.5 -> up, -0.5 -> down, 1.5 -> down, -1.5 -> up (toward +-1);
    # d/db of 2 alpha mean_i || |b_i| - 1 ||_1 is 2 alpha / n = 0.1 in magnitude
    expected = 0.1 * t([[-1.0, 1.0, 1.0, -1.0]] * 2)
    assert torch.allclose(x.grad, expected)


def test_dsh_multi_hot_equals_class_ids():
    x = torch.randn(6, 8, dtype=DTYPE)
    ids = torch.tensor([0, 2, 1, 0, 2, 2])
    assert dsh_loss(x, ids).item() == pytest.approx(dsh_loss(x, F.one_hot(ids, 3)).item())
    # multi-label: rows sharing any label are similar
    multi = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    x3 = t(DSH_X)
    # (0,1) share label 1 -> similar; (0,2) and (1,2) dissimilar: same as DSH_Y
    assert dsh_loss(x3, multi, 0.1, 3.0).item() == pytest.approx(0.2)


# u = sigmoid(outputs): u0 = (0.8, 0.8) class 0, u1 = (0.2, 0.8) class 1, u2 = (0.8, 0.2) class 0
# margin 1: (0,1) dissimilar D = 0.36 -> 1/2 (1 - 0.36) = 0.32
#           (0,2) similar    D = 0.36 -> 1/2 * 0.36     = 0.18
#           (1,2) dissimilar D = 0.72 -> 1/2 (1 - 0.72) = 0.14
# mean = 0.64 / 3 = 0.213333..., no regularizer
def test_dsh_sigmoid_hand_computation():
    logit = math.log(4.0)  # sigmoid(log 4) = 0.8
    raw = t([[logit, logit], [-logit, logit], [logit, -logit]])
    y = torch.tensor([0, 1, 0])
    loss = DSHSigmoidLoss(2, margin=1.0)
    assert loss(raw, y).item() == pytest.approx(0.64 / 3, abs=1e-12)
    squashed = DSHSigmoidLoss(2, margin=1.0, apply_sigmoid=False)
    assert squashed(torch.sigmoid(raw), y).item() == pytest.approx(0.64 / 3, abs=1e-12)
    assert loss.threshold == 0.0 and squashed.threshold == 0.5
    assert (loss.codes(raw) == squashed.codes(torch.sigmoid(raw))).all()
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        dsh_sigmoid_loss(raw, y, 1.0, apply_sigmoid=False)
    with pytest.raises(ValueError, match="never be reached"):
        DSHSigmoidLoss(2, margin=2.0)


def test_dsh_needs_a_pair():
    with pytest.raises(ValueError, match="at least 2"):
        DSHLoss(4)(torch.randn(1, 4), torch.tensor([0]))


# --------------------------------------------------------------------------- network


def test_shapes():
    torch.manual_seed(0)
    x = torch.randn(3, 3, 32, 32)
    dsh = DSHNet(12).eval()
    assert dsh(x).shape == (3, 12) and torch.equal(dsh(x), dsh.embed(x))
    assert count_parameters(DSHNet(12, batchnorm=False)) == (
        (3 * 25 * 32 + 32) + (32 * 25 * 32 + 32) + (32 * 25 * 64 + 64)
        + (1024 * 500 + 500) + (500 * 12 + 12))


def test_bad_input():
    with pytest.raises(ValueError, match="n_bits"):
        DSHNet(0)


# --------------------------------------------------------------------------- recipe and training


def _map(model, data) -> float:
    return mean_average_precision(encode(model, data.images("query")),
                                  encode(model, data.images("database")),
                                  data.part_labels("query"), data.part_labels("database"))


def test_dsh_recipe_defaults():
    r = dsh_recipe(26)
    assert (r.epochs, r.lr, r.optimizer, r.schedule, r.augment) == (26, 2e-3, "adamw",
                                                                     "onecycle", True)
    assert DSH_EPOCHS["dshnet"]["cifar10-dsh"]["smoke"] == 1
    assert DSH_EPOCHS["dshnet"]["cifar10-1k"]["quick"] > 1


def test_dsh_smoke_training_beats_chance(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=2, lr=3e-3, batch_size=32, augment=False, extra={"batchnorm": True})
    result = run(Experiment("dsh", 12, backbone="dshnet", epochs=2, recipe=recipe), data=data,
                 device="cpu", progress=False)
    model, hist = result.model, result.history
    assert isinstance(model, DSHNet) and hist.epochs == 2
    assert _map(model, data) > 0.25 + 0.3  # 4 balanced classes: chance 0.25
    assert result.record["backbone"] == "dshnet"


def test_sigmoid_variant_trains_and_gets_its_own_checkpoint(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    spec = Experiment("dsh", 12, backbone="dshnet", epochs=1)
    h1 = run(spec, data=data, progress=False).history
    sigmoid = run(spec.replace(settings={"loss": "sigmoid", "margin": 2.0}), data=data,
                  progress=False)
    assert isinstance(sigmoid.loss, DSHSigmoidLoss)
    assert h1.loss != sigmoid.history.loss  # different loss -> its own checkpoint, not a reload


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
    spec = Experiment("dsh", 12, backbone="dshnet", epochs=1)
    base = run(spec, data=data, progress=False).model
    finetuned = run(spec.replace(bits=24, settings={"finetune_from": spec.to_dict()},
                                 label="dsh_ft"), data=data, progress=False)
    ft, hist = finetuned.model, finetuned.history
    assert ft.hash.out_features == 24 and hist.epochs == 1
    # the first convolution moved only one epoch away from the source's weights
    moved = (ft.features[0].weight - base.features[0].weight).abs().mean()
    torch.manual_seed(123)  # another initialization than the source's
    fresh = (DSHNet(24).features[0].weight - base.features[0].weight).abs().mean()
    assert moved < fresh
