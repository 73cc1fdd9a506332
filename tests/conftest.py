"""Shared fixtures: every test runs under the ``smoke`` profile with its outputs (and any
user cache) in a temporary folder, so a local ``pytest`` never writes into the checkout."""

from __future__ import annotations

import numpy as np
import pytest

import hashlib_edu.profiles as profiles
from hashlib_edu.data import make_synthetic


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """smoke profile, outputs under tmp_path, a fresh smoke temp dir, a temporary user cache."""
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "smoke")
    monkeypatch.setenv("HASHLIB_EDU_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("HASHLIB_EDU_ROOT", raising=False)
    monkeypatch.setattr(profiles, "_SMOKE_TMP", None)
    yield


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models on a shared CPU: one thread is much faster than contended threads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic():
    """A small class-conditional image set: 4 classes x 32 images of 32x32x3 uint8."""
    return make_synthetic(n_per_class=32, n_classes=4, size=32, seed=0)


@pytest.fixture(scope="module")
def smoke_data():
    """4 classes x 600 images: enough for cifar10-1k's per-class draw, small under smoke."""
    return make_synthetic(n_per_class=600, n_classes=4, size=32, seed=1)


@pytest.fixture(scope="session")
def cifar_like_labels() -> np.ndarray:
    """Labels shaped like CIFAR-10 in the canonical order: 50,000 train then 10,000 test."""
    return np.concatenate([np.repeat(np.arange(10), 5000), np.repeat(np.arange(10), 1000)])
