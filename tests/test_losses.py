"""Tests of hashlib_edu.losses (DSH, DPAH, OrthoHash) and hashlib_edu.labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hashlib_edu.labels import similarity_matrix, to_multi_hot
from hashlib_edu.losses import (
    DPAHLoss,
    DSHLoss,
    DSHSigmoidLoss,
    OrthoHashLoss,
    dpah_inter_bound,
    dpah_inter_hinge,
    dsh_loss,
    dsh_sigmoid_loss,
    pairwise_squared_distances,
)

DTYPE = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


# --------------------------------------------------------------------------- labels


def test_similarity_matrix_class_ids_and_multi_hot():
    s = similarity_matrix(torch.tensor([0, 1, 0]))
    assert s.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    multi = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 0, 0]])
    # rows 0 and 1 share class 2; rows 1 and 2 share nothing
    assert similarity_matrix(multi).tolist() == [
        [True, True, True], [True, True, False], [True, False, True]]
    # class ids against multi-hot rows
    assert similarity_matrix(torch.tensor([2]), multi).tolist() == [[True, True, False]]


def test_to_multi_hot_checks():
    assert to_multi_hot(torch.tensor([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="out of range"):
        to_multi_hot(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="integers"):
        to_multi_hot(torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="only 0 and 1"):
        to_multi_hot(torch.tensor([[0.5, 0.5, 0.0]]), 3)
    with pytest.raises(ValueError, match="3 columns"):
        to_multi_hot(torch.tensor([[1, 0, 0]]), 4)
    with pytest.raises(ValueError, match="2 labels for 3 outputs"):
        to_multi_hot(torch.tensor([0, 1]), 3, n_items=3)


# --------------------------------------------------------------------------- DSH

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


def test_pairwise_squared_distances():
    x = torch.randn(6, 4, dtype=DTYPE)
    assert torch.allclose(pairwise_squared_distances(x), torch.cdist(x, x) ** 2, atol=1e-10)


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


def test_codes_are_signs_with_zero_positive():
    x = t([[0.0, -0.1, 2.0], [-3.0, 0.2, -0.0]])
    expected = np.array([[1, -1, 1], [-1, 1, 1]], dtype=np.int8)
    for loss in (DSHLoss(3), DPAHLoss(3, 2), OrthoHashLoss(3, 2)):
        assert loss.threshold == 0.0
        np.testing.assert_array_equal(loss.codes(x), expected)


@pytest.mark.parametrize(
    "make", [lambda: DSHLoss(4), lambda: DSHSigmoidLoss(4), lambda: DPAHLoss(4, 3),
             lambda: OrthoHashLoss(4, 3)])
def test_bad_inputs_raise_clear_errors(make):
    loss = make()
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="n_bits=4"):
        loss(torch.randn(3, 5), y)
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.randn(3, 4, 1), y)
    with pytest.raises(ValueError, match="2 labels for 3 outputs|got 2 labels"):
        loss(torch.randn(3, 4), y[:2])
    with pytest.raises(ValueError, match="class id"):
        loss(torch.randn(3, 4), torch.tensor([0, 1, -1]) if isinstance(loss, (DSHLoss, DSHSigmoidLoss))
             else torch.tensor([0, 1, 3]))


def test_dsh_needs_a_pair():
    with pytest.raises(ValueError, match="at least 2"):
        DSHLoss(4)(torch.randn(1, 4), torch.tensor([0]))


# --------------------------------------------------------------------------- DPAH

# K = 2, C = 3, alpha = 0.5, scale 1, outputs used as they are (output_activation=None).
# positions theta = tanh(anchors): th0 = (.6, .6), th1 = (.6, -.6), th2 = (-.6, -.6)
# d(b, th) = (2 - b.th) / 2:
#   b0 = (1, 1),    label 0: d = (0.4, 1.0, 1.6)    own 0.4
#   b1 = (.5, -1),  label 1: d = (1.15, 0.55, 0.85) own 0.55
#   b2 = (1, 0),    label 2: d = (0.7, 0.7, 1.3)    own 1.3 (closer to the others: violating)
# bound_i = log(1 + e^{1.5 d_own} * sum_neg e^{-d_j}):
#   i0: log(1 + e^0.6   (e^-1 + e^-1.6))    = log(1 + 1.822119 * 0.569776) = 0.712067
#   i1: log(1 + e^0.825 (e^-1.15 + e^-0.85)) = log(1 + 2.281881 * 0.744052) = 0.992450
#   i2: log(1 + e^1.95  (2 e^-0.7))         = log(1 + 7.028688 * 0.993171) = 2.077024
#   inter = mean = 1.260514
# hinge_i = max(1.5 d_own - min_neg d, 0) = (max(0.6-1, 0), max(0.825-0.85, 0), max(1.95-0.7, 0))
#         = (0, 0, 1.25)
# intra = mean d_own = (0.4 + 0.55 + 1.3) / 3 = 0.75
# quant = mean || |b| - 1 ||_1 = (0 + 0.5 + 1) / 3 = 0.5
# total = 1.260514 + 0.1 * 0.75 + 0.01 * 0.5 = 1.340514
DPAH_THETA = [[0.6, 0.6], [0.6, -0.6], [-0.6, -0.6]]
DPAH_B = [[1.0, 1.0], [0.5, -1.0], [1.0, 0.0]]


def _dpah_example() -> DPAHLoss:
    loss = DPAHLoss(2, 3, alpha=0.5, scale=1.0, intra_weight=0.1, quant_weight=0.01,
                    output_activation=None).double()
    loss.set_positions(t(DPAH_THETA))
    return loss


def test_dpah_hand_computation():
    loss = _dpah_example()
    # tanh(log 2) = 0.6 exactly: set_positions stored atanh(0.6) = log 2
    assert torch.allclose(loss.anchors.abs(), torch.full((3, 2), math.log(2.0), dtype=DTYPE))
    b, y = t(DPAH_B), torch.tensor([0, 1, 2])
    d = loss.distances(b)
    assert torch.allclose(d, t([[0.4, 1.0, 1.6], [1.15, 0.55, 0.85], [0.7, 0.7, 1.3]]))
    terms = loss.terms(b, y)
    assert terms["inter"].item() == pytest.approx(
        (math.log(1 + math.exp(0.6) * (math.exp(-1.0) + math.exp(-1.6)))
         + math.log(1 + math.exp(0.825) * (math.exp(-1.15) + math.exp(-0.85)))
         + math.log(1 + math.exp(1.95) * 2 * math.exp(-0.7))) / 3, rel=1e-12)
    assert terms["inter"].item() == pytest.approx(1.260514, abs=1e-6)
    assert terms["intra"].item() == pytest.approx(0.75)
    assert terms["quant"].item() == pytest.approx(0.5)
    assert loss(b, y).item() == pytest.approx(1.340514, abs=1e-6)
    d_own = d[torch.arange(3), y]
    hinge = dpah_inter_hinge(d_own, d, 0.5, neg_mask=~F.one_hot(y, 3).bool())
    assert torch.allclose(hinge, t([0.0, 0.0, 1.25]))


def test_dpah_tanh_activation_and_scale():
    loss = DPAHLoss(6, 4, scale=2.0, seed=3).double()
    raw = torch.randn(5, 6, dtype=DTYPE) * 2
    y = torch.tensor([0, 1, 2, 3, 1])
    plain = DPAHLoss(6, 4, scale=2.0, seed=3, output_activation=None).double()
    assert loss(raw, y).item() == pytest.approx(plain(torch.tanh(raw), y).item())
    # the inter term is the bound evaluated on scaled distances
    d = plain.distances(torch.tanh(raw))
    own = d[torch.arange(5), y]
    expected = dpah_inter_bound(2 * own, 2 * d, plain.alpha, ~F.one_hot(y, 4).bool()).mean()
    assert plain.terms(torch.tanh(raw), y)["inter"].item() == pytest.approx(expected.item())


def test_dpah_hinge_le_bound_random():
    g = torch.Generator().manual_seed(1)
    for alpha in (0.0, 0.1, 0.5, 1.0):
        d_own = torch.rand(200, generator=g, dtype=DTYPE) * 24
        d_neg = torch.rand(200, 9, generator=g, dtype=DTYPE) * 24
        mask = torch.rand(200, 9, generator=g) < 0.8
        hinge = dpah_inter_hinge(d_own, d_neg, alpha, mask)
        bound = dpah_inter_bound(d_own, d_neg, alpha, mask)
        assert (hinge <= bound + 1e-12).all()
        # and the gap never exceeds log(2 |negatives|)
        assert (bound - hinge <= torch.log(2 * mask.sum(1).clamp_min(1)) + 1e-12).all()


def test_dpah_bound_gap_shrinks_as_distances_separate():
    d_own = t([1.0, 3.0])
    d_neg = t([[2.0, 4.0, 5.0], [1.0, 2.5, 6.0]])  # sample 0 satisfied, sample 1 violating
    gaps = []
    for scale in (1.0, 2.0, 4.0, 8.0, 32.0):
        bound = dpah_inter_bound(scale * d_own, scale * d_neg, 0.5) / scale
        gaps.append(bound - dpah_inter_hinge(d_own, d_neg, 0.5))
    gaps = torch.stack(gaps)
    assert (gaps[1:] < gaps[:-1]).all()
    assert (gaps[-1] < 1e-2).all()
    # separating the negatives (at fixed own distance) closes the gap too
    sep = [float(dpah_inter_bound(t([1.0]), t([[1.0 + s, 1.0 + s]]), 0.0)
                 - dpah_inter_hinge(t([1.0]), t([[1.0 + s, 1.0 + s]]), 0.0)) for s in (0, 2, 4, 8)]
    assert sep == sorted(sep, reverse=True) and sep[-1] < 1e-3


def test_dpah_bound_without_negatives_is_zero_and_stable():
    d = t([[1.0, 2.0]])
    assert dpah_inter_bound(t([3.0]), d, 0.5, torch.zeros(1, 2, dtype=torch.bool)).item() == 0.0
    assert dpah_inter_hinge(t([3.0]), d, 0.5, torch.zeros(1, 2, dtype=torch.bool)).item() == 0.0
    big = dpah_inter_bound(torch.tensor([200.0]), torch.tensor([[150.0, 300.0]]), 1.0)
    assert torch.isfinite(big).all() and big.item() == pytest.approx(250.0, abs=1e-3)


def test_dpah_anchors_receive_gradients():
    loss = DPAHLoss(8, 4)
    assert isinstance(loss.anchors, torch.nn.Parameter)
    assert list(loss.parameters()) == [loss.anchors]
    x = torch.randn(6, 8, requires_grad=True)
    loss(x, torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    assert loss.anchors.grad is not None and torch.isfinite(loss.anchors.grad).all()
    assert (loss.anchors.grad.abs().sum(dim=1) > 0).all()  # every class's anchor moves
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_dpah_multi_label_own_anchor_is_mean():
    loss = _dpah_example()
    labels = torch.tensor([[1, 1, 0], [0, 0, 1], [1, 1, 1]])
    own = loss.own_positions(labels)
    theta = t(DPAH_THETA)
    assert torch.allclose(own, torch.stack([(theta[0] + theta[1]) / 2, theta[2], theta.mean(0)]))
    # the loss uses d(b, mean anchor); the first sample has negative {2} only
    b = t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    d_own = 0.5 * (2 - (b * own).sum(1))
    d = loss.distances(b)
    expected = dpah_inter_bound(d_own[:2], d[:2], 0.5, neg_mask=labels[:2] == 0)
    # third sample has every label: no negatives, inter term 0
    inter = (expected.sum() + 0.0) / 3
    assert loss.terms(b, labels)["inter"].item() == pytest.approx(inter.item())
    assert loss.terms(b, labels)["intra"].item() == pytest.approx(d_own.mean().item())


def test_dpah_rejects_bad_labels_and_is_seeded():
    loss = DPAHLoss(4, 3)
    with pytest.raises(ValueError, match="out of range"):
        loss(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="no label"):
        loss(torch.randn(2, 4), torch.tensor([[1, 0, 0], [0, 0, 0]]))
    assert torch.equal(DPAHLoss(4, 3, seed=5).anchors, DPAHLoss(4, 3, seed=5).anchors)
    assert not torch.equal(DPAHLoss(4, 3, seed=5).anchors, DPAHLoss(4, 3, seed=6).anchors)
    with pytest.raises(ValueError, match="inside"):
        loss.set_positions(torch.ones(3, 4))


def test_dpah_spread_start_is_a_scaled_target_matrix_and_still_learned():
    from hashlib_edu.targets import hadamard_targets

    loss = DPAHLoss(8, 4, init="hadamard", init_magnitude=0.9)
    assert torch.allclose(loss.positions, 0.9 * hadamard_targets(4, 8).float(), atol=1e-6)
    assert loss.anchors.requires_grad
    loss(torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    assert loss.anchors.grad.abs().sum() > 0  # not frozen by tanh's saturation at 0.9
    bern = DPAHLoss(8, 4, init="bernoulli", init_magnitude=0.5, seed=3)
    assert torch.allclose(bern.positions.abs(), torch.full((4, 8), 0.5), atol=1e-6)
    assert "init='bernoulli'" in repr(bern) and "init=" not in repr(DPAHLoss(8, 4))
    with pytest.raises(ValueError, match="init must be"):
        DPAHLoss(8, 4, init="uniform")
    with pytest.raises(ValueError, match="init_magnitude"):
        DPAHLoss(8, 4, init="hadamard", init_magnitude=1.0)


# --------------------------------------------------------------------------- OrthoHash

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


@pytest.mark.parametrize("make", [lambda: DSHLoss(0), lambda: DSHSigmoidLoss(0),
                                  lambda: DPAHLoss(0, 10), lambda: DPAHLoss(8, 1),
                                  lambda: OrthoHashLoss(0, 10), lambda: OrthoHashLoss(8, 1)])
def test_sizes_are_checked_with_a_clear_message(make):
    with pytest.raises(ValueError, match="need n_bits >= 1"):
        make()
