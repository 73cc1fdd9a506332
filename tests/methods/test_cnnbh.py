"""hashlib_edu.methods.cnnbh: parameter counts, the dropout table, shapes, codes, and a smoke
training of CNNBH."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hashlib_edu.backbones import count_parameters
from hashlib_edu.data import load_protocol
from hashlib_edu.methods.cnnbh import CNNBH_DROPOUT, CNNBHNet
from hashlib_edu.profiles import checkpoints_dir
from hashlib_edu.recipes import Recipe
from hashlib_edu.training import encode, prepare, seed_everything, train_model


def _batch(n=3, size=32):
    return torch.randn(n, 3, size, size)


def test_cnnbh_parameter_count():
    # the paper's "125K": conv stack 75,872 + knob 1024*48+48 + classifier 48*10+10
    assert count_parameters(CNNBHNet(48, batchnorm=False)) == 125_562
    assert count_parameters(CNNBHNet(48, batchnorm=True)) == 126_074  # + 2 x 256 BN params
    assert count_parameters(CNNBHNet(12, batchnorm=False)) == 125_562 - 36 * 1024 - 36 * 11


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
    net = CNNBHNet(24, n_classes=7).eval()
    assert net(x).shape == (3, 7) and net.embed(x).shape == (3, 24)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        CNNBHNet(12)(_batch(size=28))
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        CNNBHNet(12).embed(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="n_bits"):
        CNNBHNet(0)


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


def test_cnnbh_smoke_training_beats_chance(smoke_data, tmp_path):
    data = load_protocol("cifar10-1k", dataset=smoke_data, seed=0)
    recipe = Recipe(epochs=2, lr=1e-2, batch_size=32, augment=False)
    name = "cnnbh-smoke-test"

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
