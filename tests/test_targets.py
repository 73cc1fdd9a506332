"""Tests of hashlib_edu.targets: target generators and OrthoHash's analysis helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashlib_edu.targets import (
    bernoulli_targets,
    class_hash_centers,
    expected_hamming_distance,
    hadamard_matrix,
    hadamard_targets,
    make_targets,
    maxhd_targets,
    min_hamming_distance,
    orthogonality_error,
    quantization_error,
    quantization_error_identity,
)


@pytest.mark.parametrize("name", ["bernoulli", "hadamard", "maxhd"])
@pytest.mark.parametrize("n_classes, n_bits", [(10, 16), (10, 12), (100, 64), (20, 8)])
def test_targets_shape_values_and_seed(name, n_classes, n_bits):
    a = make_targets(name, n_classes, n_bits, seed=3)
    assert a.shape == (n_classes, n_bits) and a.dtype == torch.float32
    assert bool(((a == 1) | (a == -1)).all())
    assert torch.equal(a, make_targets(name, n_classes, n_bits, seed=3))
    assert not torch.equal(a, make_targets(name, n_classes, n_bits, seed=4))


def test_make_targets_unknown_name():
    with pytest.raises(ValueError, match="bernoulli"):
        make_targets("gaussian", 10, 16)


@pytest.mark.parametrize("order", [1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 48, 64, 128])
def test_hadamard_matrix_is_orthogonal(order):
    h = hadamard_matrix(order)
    assert h.shape == (order, order)
    assert torch.equal(h @ h.T, order * torch.eye(order))


def test_hadamard_matrix_missing_orders():
    for order in (3, 6, 10, 52):
        assert hadamard_matrix(order) is None


def test_hadamard_targets_orthogonality_and_distance():
    # C <= K: distinct rows of H, pairwise orthogonal, exactly K/2 bits apart
    t = hadamard_targets(10, 16, seed=0)
    assert orthogonality_error(t) == pytest.approx(0.0, abs=1e-12)
    assert min_hamming_distance(t) == 8
    assert orthogonality_error(hadamard_targets(12, 48)) == pytest.approx(0.0, abs=1e-12)
    # K < C <= 2K: rows of H and -H, minimum distance still K/2
    t = hadamard_targets(24, 16, seed=1)
    assert min_hamming_distance(t) == 8
    assert len({tuple(r) for r in t.tolist()}) == 24
    # C > 2K: Bernoulli, as in the paper
    assert torch.equal(hadamard_targets(40, 16, seed=2), bernoulli_targets(40, 16, seed=2))


def test_hadamard_targets_falls_back_with_warning():
    with pytest.warns(UserWarning, match="No Hadamard matrix"):
        t = hadamard_targets(5, 10, seed=0)
    assert torch.equal(t, bernoulli_targets(5, 10, seed=0))


def test_maxhd_min_distance_beats_bernoulli_on_average():
    for n_classes, n_bits in [(10, 16), (20, 32)]:
        seeds = range(5)
        maxhd = np.mean([min_hamming_distance(maxhd_targets(n_classes, n_bits, s)) for s in seeds])
        bern = np.mean([min_hamming_distance(bernoulli_targets(n_classes, n_bits, s))
                        for s in seeds])
        assert maxhd >= bern + 1


def test_maxhd_threshold_and_failure():
    # with a feasible threshold, every pair respects it: 4 classes, 32 bits, >= 0.5 * 32 = 16
    t = maxhd_targets(4, 32, seed=0, init_dist=0.5, max_tries=200)
    assert min_hamming_distance(t) >= 16
    with pytest.raises(ValueError, match="could not place"):
        maxhd_targets(100, 4, seed=0, max_tries=50)  # only 16 codes of 4 bits exist


def test_min_hamming_distance_hand():
    # distances: rows (0, 1) 2 bits, (0, 2) 1 bit, (1, 2) 1 bit
    codes = [[1, 1, 1, 1], [1, 1, -1, -1], [1, 1, 1, -1]]
    assert min_hamming_distance(np.array(codes)) == 1
    assert min_hamming_distance(torch.tensor(codes)) == 1
    bits = (np.array(codes) > 0).astype(np.uint8)  # {0, 1} form works too
    assert min_hamming_distance(bits) == 1
    assert min_hamming_distance(np.array(codes), block_rows=1) == 1
    with pytest.raises(ValueError, match="two rows"):
        min_hamming_distance(np.ones((1, 4)))


def test_class_hash_centers_majority_vote():
    codes = np.array([[0.3, -2.0, 1.0],    # class 0 -> signs (+, -, +)
                      [0.5, 1.0, -1.0],    # class 0 -> (+, +, -)
                      [-0.1, -0.2, 0.0],   # class 0 -> (-, -, +)   (0 counts as +1)
                      [-1.0, 1.0, -1.0]])  # class 1 -> (-, +, -)
    labels = np.array([0, 0, 0, 1])
    centers = class_hash_centers(codes, labels, 2)
    # class 0 means: (1/3, -1/3, 1/3) -> (+, -, +); class 1: (-, +, -)
    assert centers.tolist() == [[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]
    # a tie (mean 0) becomes +1; multi-hot labels vote for every class they carry
    tie = class_hash_centers(torch.tensor([[1.0, -1.0], [-1.0, -1.0]]),
                             torch.tensor([[1, 1], [1, 0]]), 2)
    assert tie.tolist() == [[1.0, -1.0], [1.0, -1.0]]
    with pytest.raises(ValueError, match="no items"):
        class_hash_centers(codes, labels, 3)


def test_orthogonality_error_hand():
    # identical rows: normalized H H^T - I = [[0, 1], [1, 0]] -> Frobenius sqrt(2)
    assert orthogonality_error(torch.ones(2, 4)) == pytest.approx(math.sqrt(2))
    # the paper's raw version on a 2x2 Hadamard: H H^T - I = 2I - I = I -> sqrt(2)
    assert orthogonality_error(np.array([[1, 1], [1, -1]]), normalize=False) == pytest.approx(
        math.sqrt(2))
    assert orthogonality_error(np.array([[1, 1], [1, -1]])) == pytest.approx(0.0)


def test_quantization_error_identity():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(50, 32, generator=g)
    direct, via_cos = quantization_error_identity(v)
    assert torch.allclose(direct, via_cos, atol=1e-4)
    assert torch.allclose(quantization_error(v.numpy()), direct)
    # any positive multiple of a +-1 vector has no quantization error
    b = torch.sign(torch.randn(3, 16, generator=g))
    assert torch.allclose(quantization_error(3.7 * b), torch.zeros(3), atol=1e-5)
    # worst case: a single axis, error 2K(1 - 1/sqrt(K)) = 2*16*(1 - 1/4) = 24
    e = torch.zeros(1, 16)
    e[0, 0] = 1.0
    assert quantization_error(e).item() == pytest.approx(24.0, abs=1e-4)


def test_expected_hamming_distance_formula_and_simulation():
    assert expected_hamming_distance(64, 0.5) == 32.0
    assert expected_hamming_distance(64, 0.3) == pytest.approx(2 * 64 * 0.3 * 0.7)
    np.testing.assert_allclose(expected_hamming_distance(10, np.array([0.0, 0.5, 1.0])),
                               [0.0, 5.0, 0.0])
    g = torch.Generator().manual_seed(0)
    for p in (0.1, 0.3, 0.5):
        a = torch.rand(20000, 64, generator=g) < p
        b = torch.rand(20000, 64, generator=g) < p
        simulated = (a != b).sum(1).double().mean().item()
        # standard error of the mean is below 0.03 here
        assert simulated == pytest.approx(expected_hamming_distance(64, p), abs=0.15)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        expected_hamming_distance(8, 1.5)
