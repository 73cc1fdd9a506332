"""hashlib_edu.analysis: intra/inter-class distances and recomputed BatchNorm statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashlib_edu.analysis import (
    bn_layers,
    intra_inter_distances,
    recompute_bn_statistics,
    separability,
)
from hashlib_edu.backbones import BackboneWithCodeLayer
from hashlib_edu.training import prepare


def _brute_force(codes, labels):
    intra, inter = [], []
    n = len(codes)
    for i in range(n):
        for j in range(i + 1, n):
            d = int((codes[i] != codes[j]).sum())
            same = bool(np.any(labels[i] & labels[j])) if labels.ndim == 2 else labels[i] == labels[j]
            (intra if same else inter).append(d)
    return np.array(intra), np.array(inter)


def test_intra_inter_matches_brute_force_class_ids():
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((30, 12)) < 0.5, -1, 1)
    labels = rng.integers(0, 4, 30)
    intra, inter = intra_inter_distances(codes, labels, max_items=None)
    ref_intra, ref_inter = _brute_force(codes, labels)
    np.testing.assert_array_equal(intra, ref_intra)
    np.testing.assert_array_equal(inter, ref_inter)
    assert len(intra) + len(inter) == 30 * 29 // 2
    assert separability(intra, inter) == pytest.approx(ref_inter.mean() - ref_intra.mean())


def test_intra_inter_multi_hot_and_01_codes():
    rng = np.random.default_rng(1)
    bits = (rng.random((20, 9)) < 0.5).astype(np.uint8)  # {0, 1} codes
    labels = (rng.random((20, 5)) < 0.3).astype(np.int64)
    labels[labels.sum(1) == 0, 0] = 1
    intra, inter = intra_inter_distances(torch.from_numpy(bits), labels, max_items=None)
    ref_intra, ref_inter = _brute_force(bits, labels)
    np.testing.assert_array_equal(np.sort(intra), np.sort(ref_intra))
    np.testing.assert_array_equal(np.sort(inter), np.sort(ref_inter))


def test_intra_inter_subsample_is_seeded_and_sized():
    rng = np.random.default_rng(2)
    codes = np.where(rng.random((200, 16)) < 0.5, -1, 1)
    labels = rng.integers(0, 10, 200)
    a = intra_inter_distances(codes, labels, max_items=50, seed=3)
    b = intra_inter_distances(codes, labels, max_items=50, seed=3)
    assert len(a[0]) + len(a[1]) == 50 * 49 // 2
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="labels"):
        intra_inter_distances(codes, labels[:10])
    with pytest.raises(ValueError, match="binary"):
        intra_inter_distances(codes * 0.5, labels)


def _trained_like(bits=8):
    torch.manual_seed(0)
    model = BackboneWithCodeLayer(bits, latent_bn=True, conv_dropout=0.5)
    with torch.no_grad():  # make the BN state non-trivial, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.train()  # a caller's model may be in train mode: it must stay so


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_recompute_latent_bn_changes_only_its_buffers_and_not_the_input():
    model = _trained_like()
    before = _state(model)
    images = np.random.default_rng(0).integers(0, 256, (37, 32, 32, 3), dtype=np.uint8)
    new = recompute_bn_statistics(model, images, batch_size=10)
    # the caller's model is untouched (values and mode)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.training and not new.training
    changed = {k for k, v in new.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"latent_bn.running_mean", "latent_bn.running_var",
                       "latent_bn.num_batches_tracked"}
    assert new.latent_bn.momentum == model.latent_bn.momentum
    # the running mean is exactly the mean of the latent BN's inputs over all images
    model.eval()
    with torch.no_grad():
        pre = model.hash(model.backbone(prepare(torch.from_numpy(images))))
    torch.testing.assert_close(new.latent_bn.running_mean, pre.mean(0), rtol=1e-4, atol=1e-5)
    rel = (new.latent_bn.running_var - pre.var(0)).abs() / pre.var(0)
    assert float(rel.max()) < 0.2  # mean of per-batch variances, close to the overall one


def test_recompute_all_layers_and_reset_affine():
    model = _trained_like()
    before = _state(model)
    images = np.random.default_rng(1).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    new = recompute_bn_statistics(model, images, batch_size=6, layers="all", reset_affine=True)
    changed = {k for k, v in new.state_dict().items() if not torch.equal(v, before[k])}
    bn_names = {n for n, m in new.named_modules()
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert changed and all(k.rsplit(".", 1)[0] in bn_names for k in changed)
    assert len(bn_layers(new, "all")) == len(bn_names)
    assert torch.equal(new.latent_bn.weight, torch.ones(8))
    assert torch.equal(new.latent_bn.bias, torch.zeros(8))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_recompute_needs_a_latent_bn():
    model = BackboneWithCodeLayer(8, latent_bn=False)
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="latent_bn"):
        recompute_bn_statistics(model, images)
    with pytest.raises(ValueError, match="layers"):
        recompute_bn_statistics(_trained_like(), images, layers="some")
