"""Smoke training of DPAH (notebook 05): HashNet + DPAHLoss on synthetic data beats chance,
and the learned positions are trained and restored from the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashlib_edu.data import make_synthetic
from hashlib_edu.experiments import Recipe, load_protocol
from hashlib_edu.losses import DPAHLoss
from hashlib_edu.metrics import hamming_distance, mean_average_precision
from hashlib_edu.recipes import train_hashnet
from hashlib_edu.training import encode


@pytest.fixture(scope="module")
def smoke_data():
    """4 classes x 600 images: enough for cifar10-1k's per-class draw, small under smoke."""
    return make_synthetic(n_per_class=600, n_classes=4, size=32, seed=1)


def test_dpah_smoke_training_beats_chance(smoke_data):
    data = load_protocol("cifar10-1k", "smoke", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=2, lr=1e-2, batch_size=32, augment=False)
    loss_fn = DPAHLoss(12, 4, seed=0)
    start = loss_fn.anchors.detach().clone()
    model, hist = train_hashnet(data, 12, loss_fn, recipe, method="dpah", seed=0,
                                device="cpu", progress=False)
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
    again = DPAHLoss(12, 4, seed=0)
    _, hist2 = train_hashnet(data, 12, again, recipe, method="dpah", seed=0, device="cpu",
                             progress=False)
    assert hist2.loss == hist.loss
    assert torch.equal(again.anchors, loss_fn.anchors)
