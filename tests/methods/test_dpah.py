"""hashlib_edu.methods.dpah: the DPAH loss (hand computation, the LogSumExp bound against the
hinge, learnable positions and their starts), the course settings and recipe, and a smoke
training (notebook 05): the backbone + code layer + DPAHLoss on synthetic data beats chance,
and the learned positions are trained and restored from the checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hashlib_edu import Experiment, run
from hashlib_edu.codes import hadamard_targets
from hashlib_edu.data import load_protocol
from hashlib_edu.methods.dpah import (
    DPAH_EPOCHS,
    DPAH_SETTINGS,
    DPAHLoss,
    dpah_inter_bound,
    dpah_inter_hinge,
    dpah_loss,
    dpah_recipe,
    dpah_scale,
)
from hashlib_edu.metrics import hamming_distance, mean_average_precision
from hashlib_edu.recipes import Recipe
from hashlib_edu.training import encode

DTYPE = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


# --------------------------------------------------------------------------- loss

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


def test_dpah_starts_from_a_given_code_matrix():
    """A (C, K) +-1 tensor -- e.g. OrthoHash's MaxHD targets -- is a start like the named ones
    (DPAH takes the matrix; it does not import OrthoHash's module to build it by name)."""
    from hashlib_edu.methods.orthohash import maxhd_targets

    start = maxhd_targets(4, 8, seed=0)
    loss = DPAHLoss(8, 4, init=start, init_magnitude=0.9)
    assert torch.allclose(loss.positions, 0.9 * start.float(), atol=1e-6)
    assert loss.anchors.requires_grad
    loss(torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    assert loss.anchors.grad.abs().sum() > 0  # still learned
    assert "init='custom'" in repr(loss)
    # a numpy matrix works too, and the magnitude applies as for the named starts
    half = DPAHLoss(8, 4, init=start.numpy(), init_magnitude=0.5)
    assert torch.allclose(half.positions, 0.5 * start.float(), atol=1e-6)
    # the start is the given matrix, whatever the seed
    assert torch.equal(DPAHLoss(8, 4, init=start, seed=1).anchors, loss.anchors)


def test_dpah_rejects_a_bad_start_matrix():
    from hashlib_edu.methods.orthohash import maxhd_targets

    with pytest.raises(ValueError, match=r"\(4, 8\)"):
        DPAHLoss(8, 4, init=maxhd_targets(5, 8, seed=0))  # one row too many
    with pytest.raises(ValueError, match=r"\(4, 8\)"):
        DPAHLoss(8, 4, init=maxhd_targets(4, 8, seed=0).T)  # transposed
    with pytest.raises(ValueError, match="\\+-1"):
        DPAHLoss(8, 4, init=0.5 * maxhd_targets(4, 8, seed=0))  # not +-1 rows
    # "maxhd" by name is OrthoHash's generator: DPAH does not know it
    with pytest.raises(ValueError, match="init must be"):
        DPAHLoss(8, 4, init="maxhd")


# --------------------------------------------------------------------------- course settings


def test_dpah_course_settings_and_overrides():
    loss = dpah_loss(48)
    assert (loss.init, loss.init_magnitude) == (DPAH_SETTINGS["init"], DPAH_SETTINGS["init_magnitude"])
    assert loss.scale == pytest.approx(2 / math.sqrt(48)) == dpah_scale(48)
    assert loss.alpha == DPAH_SETTINGS["alpha"] == 0.0  # chosen on the validation split
    assert DPAHLoss(48, 10).alpha == 0.5  # the loss's own default
    # s = 2/sqrt(K) turns -s d(b, theta) into sqrt(K) cos(b, theta) - sqrt(K) on binary codes
    b, theta = torch.sign(torch.randn(5, 48)), torch.sign(torch.randn(3, 48))
    d = (48 - b @ theta.T) / 2
    cos = torch.nn.functional.cosine_similarity(b[:, None], theta[None], dim=2)
    assert torch.allclose(-dpah_scale(48) * d, math.sqrt(48) * (cos - 1), atol=1e-4)
    paper = dpah_loss(32, init="normal", scale=1.0, alpha=1.0)
    assert (paper.init, paper.scale, paper.alpha) == ("normal", 1.0, 1.0)


def test_dpah_recipe_and_epochs_are_orthohashs():
    from hashlib_edu.methods.orthohash import ORTHOHASH_EPOCHS, orthohash_recipe

    assert DPAH_EPOCHS["cifar10-1k"] == {"smoke": 1, "quick": 60, "paper": 100}
    assert DPAH_EPOCHS == ORTHOHASH_EPOCHS
    for epochs in (1, 30, 60):
        assert dpah_recipe(epochs) == orthohash_recipe(epochs)
        assert dpah_recipe(epochs).key() == orthohash_recipe(epochs).key()
    assert dpah_recipe(60, lr=0.05) == orthohash_recipe(60, lr=0.05)


# --------------------------------------------------------------------------- smoke training


def test_dpah_smoke_training_beats_chance(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=2, lr=1e-2, batch_size=32, augment=False)
    spec = Experiment("dpah", 12, epochs=2, recipe=recipe,
                      settings={"alpha": 0.5, "init": "normal", "scale": 1.0})
    start = spec.settings.loss(12, 4, seed=0).anchors.detach().clone()
    result = run(spec, data=data, device="cpu", progress=False)
    model, hist, loss_fn = result.model, result.history, result.loss
    assert hist.epochs == 2 and hist.loss[-1] < hist.loss[0]
    assert not torch.equal(loss_fn.anchors.detach(), start)  # the positions were optimized

    q_labels, db_labels = data.part_labels("query"), data.part_labels("database")
    q_codes = encode(model, data.images("query"))
    value = mean_average_precision(q_codes, encode(model, data.images("database")),
                                   q_labels, db_labels)
    chance = 0.25  # 4 balanced classes
    assert value > chance + 0.35, value
    # the position codes already beat chance as a nearest-centroid classifier (~0.5 after
    # 2 epochs here, 1.0 after 6)
    anchors = np.where(loss_fn.positions.detach().numpy() >= 0, 1, -1)
    nearest = hamming_distance(q_codes, anchors).argmin(1)
    assert (nearest == q_labels).mean() > chance + 0.1

    # a finished checkpoint is reloaded, positions included
    again = run(spec, data=data, device="cpu", progress=False)
    assert again.history.loss == hist.loss
    assert torch.equal(again.loss.anchors, loss_fn.anchors)
