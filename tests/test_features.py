"""Tests for hashlib_edu.features: pixels, GIST-like Gabor energies, HOG."""

from __future__ import annotations

import numpy as np
import pytest

from hashlib_edu.features import (
    gabor_bank,
    gist_like_features,
    grayscale,
    hog_features,
    pixel_features,
)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)


def _stripes(freq: float, phi: float, size: int = 32) -> np.ndarray:
    """``(size, size)`` float image: a sinusoid of ``freq`` cycles/pixel, wave vector at ``phi``
    (from the x/column axis towards the y/row axis)."""
    yy, xx = np.mgrid[0:size, 0:size]
    return (0.5 + 0.4 * np.cos(2 * np.pi * freq * (xx * np.cos(phi) + yy * np.sin(phi)))).astype(
        np.float32
    )


def test_pixel_features(images):
    f = pixel_features(images)
    assert f.shape == (20, 3072) and f.dtype == np.float32
    assert f.min() >= 0.0 and f.max() <= 1.0
    np.testing.assert_allclose(f[3, :3], images[3, 0, 0] / 255.0, rtol=1e-6)


def test_grayscale(images):
    g = grayscale(images)
    assert g.shape == (20, 32, 32) and g.dtype == np.float32
    expected = images[0, 5, 7].astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721]) / 255
    assert g[0, 5, 7] == pytest.approx(expected, rel=1e-5)


def test_gist_shape_dtype_determinism(images):
    f = gist_like_features(images)
    assert f.shape == (20, 512) and f.dtype == np.float32
    assert np.all(np.isfinite(f)) and np.all(f >= 0)
    np.testing.assert_array_equal(f, gist_like_features(images))


def test_gist_threads_and_chunks_do_not_change_result(images):
    ref = gist_like_features(images, n_jobs=1, chunk_size=64)
    np.testing.assert_allclose(gist_like_features(images, n_jobs=2, chunk_size=3), ref, rtol=1e-5)


def test_gist_uint8_equals_float(images):
    a = gist_like_features(images[:4])
    b = gist_like_features(images[:4].astype(np.float32) / 255.0)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_gist_other_sizes(images):
    f = gist_like_features(images[:3], n_blocks=3, n_scales=2, n_orientations=4, prefilter=False)
    assert f.shape == (3, 2 * 4 * 9)
    g = gist_like_features(np.zeros((2, 30, 40), dtype=np.uint8))
    assert g.shape == (2, 512)


def test_gabor_bank_is_one_sided():
    bank = gabor_bank(48)
    assert bank.shape == (32, 48, 48) and bank.dtype == np.float32
    f = np.fft.fftfreq(48)
    # filter (scale 0, orientation 0) passes +f_x at 0.3 cycles/px but not -f_x
    i = int(np.argmin(np.abs(f - 0.3)))
    assert bank[0, 0, i] > 0.9 and bank[0, 0, -i] < 1e-6


@pytest.mark.parametrize("prefilter", [False, True])
@pytest.mark.parametrize("scale", [0, 1, 2, 3])
def test_gabor_energy_is_orientation_and_scale_selective(prefilter, scale):
    """Stripes at each filter's own frequency and orientation excite that filter the most."""
    f0 = 0.3 / 1.85**scale
    stripes = np.stack([_stripes(f0, np.pi * o / 8) for o in range(8)])
    energy = gist_like_features(stripes, prefilter=prefilter).reshape(8, 4, 8, 16).mean(axis=-1)
    for o in range(8):
        assert np.unravel_index(np.argmax(energy[o]), (4, 8)) == (scale, o)
        # the orthogonal orientation at the same scale responds far less. Coarse filters are
        # ~5-9 px wide and reach into the mirror padding, where diagonal stripes are reflected
        # into the orthogonal diagonal: hence the looser bound there.
        limit = 0.2 if scale <= 1 else 0.4
        assert energy[o, scale, (o + 4) % 8] < limit * energy[o, scale, o]


def test_hog(images):
    f = hog_features(images)
    assert f.shape == (20, 324) and f.dtype == np.float32
    np.testing.assert_array_equal(f, hog_features(images))
    hv = hog_features(_stripes(0.125, 0.0)[None])
    hh = hog_features(_stripes(0.125, np.pi / 2)[None])
    assert not np.allclose(hv, hh)


def test_image_validation(images):
    with pytest.raises(ValueError, match="channels-last"):
        pixel_features(images.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="leading batch axis"):
        gist_like_features(images[0, :, :, 0])
    with pytest.raises(ValueError, match="leading batch axis"):
        hog_features(images[0])
    with pytest.raises(TypeError, match="uint8"):
        grayscale(images.astype(np.int64))
    with pytest.raises(ValueError, match="empty"):
        gist_like_features(images[:0])
    with pytest.raises(ValueError, match="too small"):
        gist_like_features(np.zeros((1, 3, 3), dtype=np.uint8))
