"""Image transforms on whole in-memory batches (one place for normalization and augmentation).

CPU training is the bottleneck of the course, so images stay decoded in memory as
one uint8 tensor and augmentation runs on a whole batch at once (pad-and-crop,
horizontal flip) instead of per-image PIL transforms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "to_float", "normalize", "random_crop_flip", "prepare"]

#: Channel statistics of the official CIFAR-10 training set (the JPEG copy differs by < 0.01).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """``(n, h, w, 3)`` uint8 -> ``(n, 3, h, w)`` float32 in ``[0, 1]``."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"expected a uint8 image batch of shape (n, h, w, 3); got {tuple(images.shape)} "
            f"{images.dtype}."
        )
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(x: torch.Tensor, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` on ``(n, 3, h, w)`` floats."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def random_crop_flip(x: torch.Tensor, padding: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, for a whole batch.

    Args:
        x: ``(n, c, h, w)`` floats (already normalized: padding is 0 = the mean).
        padding: pixels of zero padding on each side before cropping back to ``h x w``.
        generator: CPU generator for reproducible augmentation.
    """
    n, _, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # (n, h)
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # (n, w)
        idx_r = rows.view(n, 1, h, 1).expand(n, x.shape[1], h, padded.shape[3])
        padded = padded.gather(2, idx_r)
        idx_c = cols.view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        x = padded.gather(3, idx_c)
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    return x


def prepare(images: torch.Tensor, augment: bool = False, generator: torch.Generator | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` -> normalized float ``(n, 3, h, w)`` on ``device``, optionally augmented."""
    if device is not None:
        images = images.to(device, non_blocking=True)
    x = normalize(to_float(images))
    if augment:
        x = random_crop_flip(x, generator=generator)
    return x
