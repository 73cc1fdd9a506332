"""Hand-crafted global image descriptors for the classic baselines.

Three fixed (not learned) descriptors of small RGB images, e.g. CIFAR-10's
``(n, 32, 32, 3)`` uint8:

``pixel_features``
    The raw pixels, flattened to ``(n, H*W*3)`` float32 in ``[0, 1]``.
``gist_like_features``
    A **GIST-like** descriptor: Gabor-filter energies averaged on a grid, in
    the spirit of Oliva & Torralba's GIST and with the filter bank of their
    ``LMgist.m`` (4 scales x 8 orientations on a 4 x 4 grid = 512-D, the size
    the hashing papers call "512-D GIST"). It is *not* the reference
    implementation: it runs on the native 32 x 32 grayscale image (no resize
    to 256 x 256), with its own padding and prefilter settings (see the
    function), so numbers will differ from papers that used the original code.
``hog_features``
    scikit-image's Histogram of Oriented Gradients on the grayscale image
    (324-D for 32 x 32 with the defaults).

Everything is numpy / scipy / scikit-image (no torch); outputs are float32.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.fft

from .codes import as_numpy

__all__ = [
    "grayscale",
    "pixel_features",
    "gabor_bank",
    "gist_like_features",
    "hog_features",
]

# Rec. 709 luma weights, as skimage.color.rgb2gray.
_LUMA = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


def _check_images(images: Any) -> np.ndarray:
    """Images as ``(n, H, W, 3)`` or ``(n, H, W)`` float32 in ``[0, 1]``.

    uint8 inputs are divided by 255; float inputs are taken to be in ``[0, 1]``.
    """
    arr = as_numpy(images)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        raise ValueError(
            f"images must be channels-last (n, H, W, 3); got shape {arr.shape}, which looks "
            "channels-first: use images.transpose(0, 2, 3, 1)."
        )
    if arr.ndim == 3 and arr.shape[-1] in (1, 3) and arr.shape[1] > 3:
        raise ValueError(
            f"images of shape {arr.shape} look like one (H, W, C) image; pass a batch "
            "(n, H, W, 3): add a leading batch axis with images[None]."
        )
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim in (3, 4) and arr.shape[0] == 0:
        raise ValueError("images is empty (n = 0).")
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)):
        raise ValueError(
            f"images must be (n, H, W, 3) RGB or (n, H, W) grayscale; got shape {arr.shape} "
            "(a single image needs a leading batch axis: images[None])."
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(out)):
            raise ValueError("images contain NaN or infinite values.")
        return out
    raise TypeError(f"images must be uint8 (0..255) or float (0..1); got dtype {arr.dtype}.")


def grayscale(images: Any) -> np.ndarray:
    """Luma of RGB images (Rec. 709 weights, as ``skimage.color.rgb2gray``).

    Args:
        images: ``(n, H, W, 3)`` uint8 or float in ``[0, 1]`` (``(n, H, W)`` passes through).

    Returns:
        ``(n, H, W)`` float32 in ``[0, 1]``.
    """
    arr = _check_images(images)
    return arr if arr.ndim == 3 else arr @ _LUMA


def pixel_features(images: Any) -> np.ndarray:
    """Raw pixels: ``(n, H, W, C)`` uint8 -> ``(n, H*W*C)`` float32 in ``[0, 1]``."""
    arr = _check_images(images)
    return np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=np.float32)


# ----------------------------------------------------------------------------
# GIST-like descriptor
# ----------------------------------------------------------------------------


def _frequency_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Radial frequency (cycles/pixel) and angle of the ``(size, size)`` FFT grid.

    Axis 0 is ``y`` (rows), axis 1 is ``x`` (columns); the angle is
    ``atan2(f_y, f_x)`` in ``(-pi, pi]``.
    """
    f = np.fft.fftfreq(size)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    return np.hypot(fx, fy), np.arctan2(fy, fx)


def gabor_bank(size: int, n_scales: int = 4, n_orientations: int = 8) -> np.ndarray:
    """Frequency responses of a Gabor-like filter bank, parametrized as ``LMgist``'s ``createGabor``.

    Filter ``(s, o)`` is ``exp(-3.5 (f / f_s - 1)^2) * exp(-2 pi a (theta - phi_o)^2)``
    with centre frequency ``f_s = 0.3 / 1.85^s`` cycles/pixel, orientation
    ``phi_o = o * pi / n_orientations`` (the direction of the wave vector, from
    the ``x``/column axis towards the ``y``/row axis) and ``a = n_orientations^2 / 64``.
    Each filter covers one side of the spectrum only, so its output is complex
    (an analytic / quadrature pair) and its modulus is the local energy of
    stripes with that orientation and scale.

    Args:
        size: side of the (padded) square image the FFT is taken on.

    Returns:
        ``(n_scales * n_orientations, size, size)`` float32, unshifted FFT order,
        scale-major (index ``s * n_orientations + o``).
    """
    fr, theta = _frequency_grid(size)
    a = 16.0 * n_orientations**2 / 32.0**2
    filters = []
    for s in range(n_scales):
        f0 = 0.3 / 1.85**s
        radial = np.exp(-10.0 * 0.35 * (fr / f0 - 1.0) ** 2)
        for o in range(n_orientations):
            dt = np.angle(np.exp(1j * (theta - np.pi * o / n_orientations)))  # wrap to (-pi, pi]
            filters.append(radial * np.exp(-2.0 * np.pi * a * dt**2))
    return np.stack(filters).astype(np.float32)


def _block_mean(a: np.ndarray, n_blocks: int) -> np.ndarray:
    """Average ``a: (..., H, W)`` over an ``n_blocks x n_blocks`` grid -> ``(..., n_blocks, n_blocks)``.

    Block edges are ``floor(linspace(0, H, n_blocks + 1))`` (as ``LMgist``'s ``downN``),
    i.e. equal blocks when ``n_blocks`` divides the side.
    """
    out = a
    for axis in (-1, -2):
        length = a.shape[axis]
        edges = np.floor(np.linspace(0, length, n_blocks + 1)).astype(int)
        counts = np.diff(edges)
        if np.any(counts == 0):
            raise ValueError(f"image side {length} is too small for {n_blocks} blocks.")
        out = np.add.reduceat(out, edges[:-1], axis=axis)
        shape = [1] * out.ndim
        shape[axis] = n_blocks
        out /= counts.reshape(shape).astype(out.dtype)
    return out


def _prefilter(gray: np.ndarray, pad: int, cutoff: float) -> np.ndarray:
    """GIST's prefilter: log, whitening (remove a low-pass), local contrast normalization.

    Args:
        gray: ``(n, H, W)`` float32 in ``[0, 1]``; pad: symmetric padding (pixels);
        cutoff: Gaussian low-pass scale in cycles/pixel (gain 1/2 there).

    Returns:
        ``(n, H, W)`` float32.
    """
    _n, h, w = gray.shape
    img = np.log1p(np.float32(255.0) * gray)
    size = max(h, w) + 2 * pad
    img = np.pad(img, ((0, 0), (pad, size - h - pad), (pad, size - w - pad)), mode="symmetric")
    fr, _ = _frequency_grid(size)
    gf = np.exp(-(fr**2) * np.log(2.0) / cutoff**2).astype(np.float32)[:, : size // 2 + 1]

    def lowpass(x: np.ndarray) -> np.ndarray:  # real, symmetric filter: half spectrum
        return scipy.fft.irfft2(scipy.fft.rfft2(x, workers=1) * gf, s=(size, size), workers=1)

    white = img - lowpass(img)
    out = white / (0.2 + np.sqrt(np.abs(lowpass(white**2))))
    return out[:, pad : pad + h, pad : pad + w].astype(np.float32)


def _gist_chunk(
    gray: np.ndarray,
    bank: np.ndarray,
    pad: int,
    n_blocks: int,
    prefilter: bool,
    prefilter_cutoff: float,
) -> np.ndarray:
    """Gabor energies of one chunk: ``gray: (m, H, W)`` -> ``(m, n_filters, n_blocks, n_blocks)``.

    ``bank: (n_scales, n_orientations, size, 2 * size)`` float32, each filter value
    repeated twice (for the real and imaginary parts); filters one scale at a time
    to bound memory (``m * n_orientations * size^2`` complex64).
    """
    m, h, w = gray.shape
    size = bank.shape[-2]
    if prefilter:
        gray = _prefilter(gray, pad=5, cutoff=prefilter_cutoff)
    img = np.pad(gray, ((0, 0), (pad, size - h - pad), (pad, size - w - pad)), mode="symmetric")
    spec = scipy.fft.fft2(img, workers=1)  # (m, size, size) complex64
    buf = np.empty((m, bank.shape[1], size, size), dtype=np.complex64)
    out = []
    for scale_bank in bank:
        # complex spectrum x real filter, as float32 (re, im) pairs: 2 flops instead of 6
        np.multiply(spec.view(np.float32)[:, None], scale_bank[None], out=buf.view(np.float32))
        resp = scipy.fft.ifft2(buf, workers=1, overwrite_x=True)
        energy = np.abs(resp[..., pad : pad + h, pad : pad + w])
        out.append(_block_mean(energy, n_blocks))
    return np.concatenate(out, axis=1)


def gist_like_features(
    images: Any,
    n_blocks: int = 4,
    n_scales: int = 4,
    n_orientations: int = 8,
    prefilter: bool = True,
    prefilter_cutoff: float = 4.0 / 256.0,
    pad: int = 8,
    chunk_size: int = 32,
    n_jobs: int | None = None,
) -> np.ndarray:
    """GIST-like descriptor: Gabor energies averaged on a grid (4 x 8 x 4 x 4 = 512-D by default).

    Pipeline, per grayscale image (FFTs batched over chunks of images, chunks
    spread over threads):

    1. optional prefilter as in ``LMgist``'s ``prefilt``: ``log(1 + 255 * gray)``,
       subtract a Gaussian low-pass (whitening), divide by the local standard
       deviation + 0.2. The low-pass cutoff is in cycles/pixel; the default
       ``4/256`` is ``LMgist``'s 4 cycles on its default 256-pixel image (its
       ``fc_prefilt = 4`` taken literally on 32 x 32 images would remove the
       two coarsest Gabor scales);
    2. symmetric padding by ``pad`` pixels, FFT, multiplication by each filter
       of :func:`gabor_bank`, inverse FFT, modulus (local energy), crop back to
       the image (the FFT is circular: ``pad`` keeps the wrap-around away from
       the image for all but the coarsest scale, whose filters are ~9 px wide;
       near the borders the mirror padding also reflects diagonal structure
       into the other diagonal, so coarse-scale orientation tuning is broader);
    3. mean energy over an ``n_blocks x n_blocks`` grid of the image.

    This follows the structure and filter parameters of Oliva & Torralba's
    GIST (``LMgist.m``) but is not that code: images stay at their native size
    (no resize to 256 x 256) and padding differs, so values are not
    interchangeable with published GIST vectors.

    Args:
        images: ``(n, H, W, 3)`` uint8 (or float in ``[0, 1]``, or ``(n, H, W)`` grayscale).
        n_blocks: grid side; n_scales, n_orientations: filter bank size.
        prefilter: apply step 1.
        prefilter_cutoff: step 1's low-pass cutoff, cycles/pixel.
        pad: symmetric padding before filtering (pixels).
        chunk_size: images per batch (memory per thread ~
            ``chunk_size * n_orientations * (max(H, W) + 2 pad)^2 * 8`` bytes, 4.7 MB by default).
        n_jobs: threads (default: all CPU cores; 1 = no threads).

    Returns:
        ``(n, n_scales * n_orientations * n_blocks**2)`` float32, ordered
        ``(scale, orientation, block_row, block_col)``.
    """
    gray = grayscale(images)
    n, h, w = gray.shape
    if pad < 0 or chunk_size <= 0 or n_blocks <= 0 or n_scales <= 0 or n_orientations <= 0:
        raise ValueError(
            "pad must be >= 0 and chunk_size, n_blocks, n_scales, n_orientations > 0; got "
            f"pad={pad}, chunk_size={chunk_size}, n_blocks={n_blocks}, n_scales={n_scales}, "
            f"n_orientations={n_orientations}."
        )
    if min(h, w) < n_blocks:
        raise ValueError(
            f"images of {h} x {w} pixels are too small for {n_blocks} x {n_blocks} blocks."
        )
    size = max(h, w) + 2 * pad
    bank = gabor_bank(size, n_scales, n_orientations).reshape(n_scales, n_orientations, size, size)
    bank = np.repeat(bank, 2, axis=-1)  # (.., size, 2 size): one value per (re, im) float
    n_jobs = (os.cpu_count() or 1) if n_jobs is None else max(1, int(n_jobs))
    out = np.empty((n, n_scales * n_orientations, n_blocks, n_blocks), dtype=np.float32)

    def work(start: int) -> None:
        out[start : start + chunk_size] = _gist_chunk(
            gray[start : start + chunk_size], bank, pad, n_blocks, prefilter, prefilter_cutoff
        )

    starts = range(0, n, chunk_size)
    if n_jobs == 1 or n <= chunk_size:
        for start in starts:
            work(start)
    else:  # numpy and scipy.fft release the GIL: threads scale over cores
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(work, starts))
    return out.reshape(n, -1)


# ----------------------------------------------------------------------------
# HOG
# ----------------------------------------------------------------------------


def hog_features(
    images: Any,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    cells_per_block: int = 2,
) -> np.ndarray:
    """scikit-image HOG of the grayscale images (``block_norm="L2-Hys"``).

    Args:
        images: ``(n, H, W, 3)`` uint8 (or float in ``[0, 1]``, or ``(n, H, W)``).
        orientations: gradient-orientation bins per cell.
        pixels_per_cell: cell side in pixels; cells_per_block: block side in cells.

    Returns:
        ``(n, D)`` float32; ``D = 324`` for 32 x 32 images with the defaults
        (3 x 3 blocks x 2 x 2 cells x 9 bins).
    """
    from skimage.feature import hog  # scikit-image is only needed here

    gray = grayscale(images)
    kwargs = dict(
        orientations=orientations,
        pixels_per_cell=(pixels_per_cell, pixels_per_cell),
        cells_per_block=(cells_per_block, cells_per_block),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    first = hog(gray[0], **kwargs)
    out = np.empty((gray.shape[0], first.size), dtype=np.float32)
    out[0] = first
    for i in range(1, gray.shape[0]):
        out[i] = hog(gray[i], **kwargs)
    return out
