"""hashlib_edu.methods.orthohash: target generators (make_targets, MaxHD), OrthoHash's analysis
helpers (class hash centers, orthogonality, the quantization identity), OrthoHashLoss, and the
course settings and recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hashlib_edu.codes import bernoulli_targets, min_hamming_distance, quantization_error
from hashlib_edu.methods.orthohash import (
    ORTHOHASH_EPOCHS,
    ORTHOHASH_SETTINGS,
    OrthoHashLoss,
    class_hash_centers,
    make_targets,
    maxhd_targets,
    orthogonality_error,
    orthohash_loss,
    orthohash_recipe,
    quantization_error_identity,
)

DTYPE = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize("name", ["bernoulli", "hadamard", "maxhd"])
@pytest.mark.parametrize("n_classes, n_bits", [(10, 16), (10, 12), (100, 64), (20, 8)])
def test_targets_shape_values_and_seed(name, n_classes, n_bits):
    a = make_targets(name, n_classes, n_bits, seed=3)
    assert a.shape == (n_classes, n_bits) and a.dtype == torch.float32
    assert bool(((a == 1) | (a == -1)).all())
    assert torch.equal(a, make_targets(name, n_classes, n_bits, seed=3))
    assert not torch.equal(a, make_targets(name, n_classes, n_bits, seed=4))


def test_make_targets_unknown_name():
    with pytest.raises(ValueError, match="bernoulli"):
        make_targets("gaussian", 10, 16)


def test_maxhd_min_distance_beats_bernoulli_on_average():
    for n_classes, n_bits in [(10, 16), (20, 32)]:
        seeds = range(5)
        maxhd = np.mean([min_hamming_distance(maxhd_targets(n_classes, n_bits, s)) for s in seeds])
        bern = np.mean([min_hamming_distance(bernoulli_targets(n_classes, n_bits, s))
                        for s in seeds])
        assert maxhd >= bern + 1


def test_maxhd_threshold_and_failure():
    # with a feasible threshold, every pair respects it: 4 classes, 32 bits, >= 0.5 * 32 = 16
    t = maxhd_targets(4, 32, seed=0, init_dist=0.5, max_tries=200)
    assert min_hamming_distance(t) >= 16
    with pytest.raises(ValueError, match="could not place"):
        maxhd_targets(100, 4, seed=0, max_tries=50)  # only 16 codes of 4 bits exist


def test_class_hash_centers_majority_vote():
    codes = np.array([[0.3, -2.0, 1.0],    # class 0 -> signs (+, -, +)
                      [0.5, 1.0, -1.0],    # class 0 -> (+, +, -)
                      [-0.1, -0.2, 0.0],   # class 0 -> (-, -, +)   (0 counts as +1)
                      [-1.0, 1.0, -1.0]])  # class 1 -> (-, +, -)
    labels = np.array([0, 0, 0, 1])
    centers = class_hash_centers(codes, labels, 2)
    # class 0 means: (1/3, -1/3, 1/3) -> (+, -, +); class 1: (-, +, -)
    assert centers.tolist() == [[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]
    # a tie (mean 0) becomes +1; multi-hot labels vote for every class they carry
    tie = class_hash_centers(torch.tensor([[1.0, -1.0], [-1.0, -1.0]]),
                             torch.tensor([[1, 1], [1, 0]]), 2)
    assert tie.tolist() == [[1.0, -1.0], [1.0, -1.0]]
    with pytest.raises(ValueError, match="no items"):
        class_hash_centers(codes, labels, 3)


def test_orthogonality_error_hand():
    # identical rows: normalized H H^T - I = [[0, 1], [1, 0]] -> Frobenius sqrt(2)
    assert orthogonality_error(torch.ones(2, 4)) == pytest.approx(math.sqrt(2))
    # the paper's raw version on a 2x2 Hadamard: H H^T - I = 2I - I = I -> sqrt(2)
    assert orthogonality_error(np.array([[1, 1], [1, -1]]), normalize=False) == pytest.approx(
        math.sqrt(2))
    assert orthogonality_error(np.array([[1, 1], [1, -1]])) == pytest.approx(0.0)


def test_quantization_error_identity():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(50, 32, generator=g)
    direct, via_cos = quantization_error_identity(v)
    assert torch.allclose(direct, via_cos, atol=1e-4)
    rescaled = torch.from_numpy(quantization_error(v.numpy(), rescale=True, per_row=True))
    assert torch.allclose(rescaled.float(), direct)


# --------------------------------------------------------------------------- OrthoHash loss

# K = 4, C = 3, s = 2, m = 0.2; targets o0 = (1,1,1,1), o1 = (1,1,-1,-1), o2 = (1,-1,1,-1)
# v = (2,2,2,2), y = 0: cos = (1, 0, 0) -> logits (2(1-0.2), 0, 0) = (1.6, 0, 0)
#    CE = log(1 + 2 e^-1.6) = 0.339178
# v = (1,1,0,0), y = 1: cos = (1/sqrt2, 1/sqrt2, 0) -> logits (1.414214, 1.014214, 0)
#    CE = -1.014214 + log(e^1.414214 + e^1.014214 + 1) = 1.048901
# batch mean = 0.694039
# multi-label v = (1,1,0,0), y = {0, 1}: logits (1.014214, 1.014214, 0), target (1/2, 1/2, 0)
#    CE = log(2 e^1.014214 + 1) - 1.014214 = 0.859800
ORTHO_TARGETS = [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]]


def _ortho(**kw) -> OrthoHashLoss:
    return OrthoHashLoss(4, 3, margin=0.2, scale=2.0, targets=torch.tensor(ORTHO_TARGETS), **kw)


def test_orthohash_hand_computation_single_label():
    loss = _ortho()
    v = t([[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    assert loss(v, y).item() == pytest.approx((0.339178 + 1.048901) / 2, abs=1e-6)
    assert loss(v, y).item() == pytest.approx(0.694039, abs=1e-6)
    assert loss(v, F.one_hot(y, 3)).item() == pytest.approx(loss(v, y).item())
    c = 1 / math.sqrt(2)
    assert torch.allclose(loss.logits(v), 2 * t([[1.0, 0, 0], [c, c, 0]]))


def test_orthohash_hand_computation_multi_label():
    loss = _ortho()
    v = t([[1.0, 1.0, 0.0, 0.0]])
    assert loss(v, torch.tensor([[1, 1, 0]])).item() == pytest.approx(0.859800, abs=1e-6)


def test_orthohash_arc_margin():
    # theta_0 = pi/4 for v = (1,1,0,0) and o0; OrthoArc logit 2 cos(pi/4 + 0.2) = 1.105063
    loss = _ortho(margin_type="arc")
    v = t([[1.0, 1.0, 0.0, 0.0]])
    logits = [2 * math.cos(math.pi / 4 + 0.2), 2 / math.sqrt(2), 0.0]
    expected = -logits[0] + math.log(sum(math.exp(z) for z in logits))
    assert loss(v, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-10)


def test_orthohash_bce_variants():
    v = t([[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    # per-bit: v_hat = sqrt(K) v / ||v|| = (1,1,1,1) and (sqrt2, sqrt2, 0, 0); logits s * v_hat;
    # targets (o + 1)/2 = (1,1,1,1) and (1,1,0,0)
    r = math.sqrt(2)

    def sp(z: float) -> float:  # softplus: BCE of logit z against target 0 is softplus(z)
        return math.log1p(math.exp(z))
    per_bit = [sp(-2)] * 4 + [sp(-2 * r), sp(-2 * r), sp(0), sp(0)]
    assert _ortho(loss_type="bce")(v, y).item() == pytest.approx(sum(per_bit) / 8, rel=1e-10)
    # per-class sigmoid on the margin logits (1.6, 0, 0) and (1.414214, 1.014214, 0)
    z = [[1.6, 0.0, 0.0], [2 / r, 2 * (1 / r - 0.2), 0.0]]
    per_class = [sp(-z[0][0]), sp(z[0][1]), sp(z[0][2]), sp(z[1][0]), sp(-z[1][1]), sp(z[1][2])]
    assert _ortho(loss_type="class_bce")(v, y).item() == pytest.approx(sum(per_class) / 6)


def test_orthohash_defaults_and_targets():
    loss = OrthoHashLoss(16, 10)
    assert loss.scale == pytest.approx(4.0) and loss.margin == 0.2
    assert loss.targets.shape == (10, 16) and set(loss.targets.unique().tolist()) == {-1.0, 1.0}
    assert "targets" in loss.state_dict() and list(loss.parameters()) == []
    assert torch.equal(loss.targets, OrthoHashLoss(16, 10).targets)  # seed 0 by default
    assert not torch.equal(loss.targets, OrthoHashLoss(16, 10, seed=1).targets)
    assert OrthoHashLoss(16, 10, scale="adacos").scale == pytest.approx(math.sqrt(2) * math.log(9))
    for name in ("hadamard", "maxhd"):
        assert OrthoHashLoss(16, 10, targets=name).targets.shape == (10, 16)
    x = torch.randn(8, 16, requires_grad=True)
    loss(x, torch.arange(8)).backward()
    assert torch.isfinite(x.grad).all()


def test_orthohash_bad_targets():
    with pytest.raises(ValueError, match="shape"):
        OrthoHashLoss(4, 3, targets=torch.ones(2, 4))
    with pytest.raises(ValueError, match="-1 and \\+1"):
        OrthoHashLoss(4, 3, targets=torch.zeros(3, 4))
    with pytest.raises(ValueError, match="one of"):
        OrthoHashLoss(4, 3, targets="gaussian")
    with pytest.raises(ValueError, match="margin_type"):
        OrthoHashLoss(4, 3, margin_type="sphere")


# --------------------------------------------------------------------------- course settings


def test_orthohash_recipe():
    from hashlib_edu.methods.cnnbh import cnnbh_sgd_recipe

    a, c = orthohash_recipe(60), cnnbh_sgd_recipe(60)
    # CNNBH's SGD recipe, without its label smoothing
    for field in ("lr", "weight_decay", "batch_size", "optimizer", "schedule", "augment"):
        assert getattr(a, field) == getattr(c, field)
    assert "label_smoothing" not in a.extra
    assert ORTHOHASH_EPOCHS["cifar10-1k"]["smoke"] == 1
    assert ORTHOHASH_EPOCHS["cifar10-1k"]["quick"] == 60


def test_orthohash_course_settings_and_overrides():
    loss = orthohash_loss(48, 10, seed=3)
    assert isinstance(loss, OrthoHashLoss) and loss.margin == ORTHOHASH_SETTINGS["margin"]
    assert torch.equal(loss.targets, make_targets(ORTHOHASH_SETTINGS["targets"], 10, 48, seed=3))
    paper = orthohash_loss(48, 10, targets="bernoulli", margin=0.2)
    assert (paper.margin, paper.target_name, paper.scale) == (0.2, "bernoulli", 48 ** 0.5)
