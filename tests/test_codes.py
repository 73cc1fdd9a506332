"""hashlib_edu.codes: sign convention, {-1,+1} <-> {0,1}, bit packing, the quantization error,
code constructions (Bernoulli, Hadamard) and their distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashlib_edu.codes import (
    as_numpy,
    bernoulli_targets,
    check_binary,
    check_target_sizes,
    expected_hamming_distance,
    hadamard_matrix,
    hadamard_targets,
    min_hamming_distance,
    pack_codes,
    quantization_error,
    sign,
    to_bits,
    to_pm1,
    unpack_codes,
)


def test_sign_zero_is_plus_one():
    x = np.array([[-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.5]])
    out = sign(x)
    assert out.dtype == np.int8 and out.shape == x.shape
    np.testing.assert_array_equal(out, [[-1, 1, 1, 1, -1, 1]])
    np.testing.assert_array_equal(sign(np.array([[0, -3, 4]])), [[1, -1, 1]])  # integers too


def test_sign_torch_input():
    x = torch.tensor([[0.0, -1.0, 2.0]], requires_grad=True) * 1  # non-leaf, needs detach
    out = sign(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.int8
    np.testing.assert_array_equal(out, [[1, -1, 1]])
    # unlike torch.sign, which maps 0 to 0
    assert torch.sign(torch.tensor(0.0)) == 0


def test_sign_errors():
    with pytest.raises(ValueError, match="NaN"):
        sign(np.array([[0.5, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        sign(torch.tensor([[float("nan")]]))
    with pytest.raises(TypeError):
        sign(np.array([[True, False]]))


def test_as_numpy():
    t = torch.arange(6).view(2, 3)
    a = as_numpy(t)
    assert isinstance(a, np.ndarray)
    np.testing.assert_array_equal(a, [[0, 1, 2], [3, 4, 5]])
    arr = np.zeros(3)
    assert as_numpy(arr) is arr
    np.testing.assert_array_equal(as_numpy([[1, -1]]), [[1, -1]])


def test_bits_pm1_round_trips():
    rng = np.random.default_rng(0)
    pm1 = np.where(rng.random((20, 13)) < 0.5, -1, 1).astype(np.int8)
    bits = to_bits(pm1)
    assert bits.dtype == np.uint8
    np.testing.assert_array_equal(bits, (pm1 == 1).astype(np.uint8))  # +1 <=> bit 1
    back = to_pm1(bits)
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, pm1)
    # idempotent on the form they already produce
    np.testing.assert_array_equal(to_bits(bits), bits)
    np.testing.assert_array_equal(to_pm1(pm1), pm1)
    # booleans are bits; torch input works
    np.testing.assert_array_equal(to_pm1(bits.astype(bool)), pm1)
    np.testing.assert_array_equal(to_bits(torch.from_numpy(pm1)), bits)
    np.testing.assert_array_equal(to_pm1(torch.from_numpy(bits)), pm1)


def test_sign_then_bits():
    x = np.array([[-0.3, 0.0, 0.7]])
    np.testing.assert_array_equal(to_bits(sign(x)), [[0, 1, 1]])


@pytest.mark.parametrize("k", [7, 8, 12, 48, 65])
def test_pack_unpack_round_trip(k):
    rng = np.random.default_rng(k)
    pm1 = np.where(rng.random((9, k)) < 0.5, -1, 1).astype(np.int8)
    packed = pack_codes(pm1)
    assert packed.dtype == np.uint8 and packed.shape == (9, (k + 7) // 8)
    back = unpack_codes(packed, k)
    assert back.dtype == np.int8 and back.shape == (9, k)
    np.testing.assert_array_equal(back, pm1)
    # {0,1} input packs the same
    np.testing.assert_array_equal(pack_codes(to_bits(pm1)), packed)
    # torch input on both sides
    np.testing.assert_array_equal(unpack_codes(torch.from_numpy(packed), k), pm1)
    np.testing.assert_array_equal(pack_codes(torch.from_numpy(pm1)), packed)


def test_pack_order_is_numpy_packbits():
    # big-endian inside a byte; last byte zero-padded
    codes = np.array([[1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1]])  # k = 12
    packed = pack_codes(codes)
    np.testing.assert_array_equal(packed, [[0b1000_0000, 0b0001_0000]])
    bits = (codes > 0).astype(np.uint8)
    np.testing.assert_array_equal(packed, np.packbits(bits, axis=1))
    np.testing.assert_array_equal(pack_codes([[1, 1, 1, 1, 1, 1, 1]]), [[0b1111_1110]])


def test_check_binary():
    arr, kind = check_binary(np.array([[1, -1]]))
    assert kind == "pm1"
    assert check_binary(np.array([[0, 1]]))[1] == "01"
    assert check_binary(np.array([[1, 1]]))[1] == "pm1"  # ambiguous all-ones: read as +1
    assert check_binary(np.array([[True, False]]))[1] == "01"


def test_non_binary_errors():
    with pytest.raises(ValueError, match="binary") as err:
        to_bits(np.array([[0.3, -1.0]]))
    assert "sign" in str(err.value)  # points at the fix
    with pytest.raises(ValueError, match="binary"):
        pack_codes(np.array([[-1, 0, 1]]))  # mixed conventions
    with pytest.raises(ValueError, match="2-D"):
        to_pm1(np.array([1, -1, 1]))
    with pytest.raises(ValueError, match="uint8"):
        unpack_codes(np.array([[1, 2]], dtype=np.int64), 12)
    with pytest.raises(ValueError, match="n_bits"):
        unpack_codes(np.zeros((2, 2), np.uint8), 17)
    with pytest.raises(ValueError, match="n_bits"):
        unpack_codes(np.zeros((2, 2), np.uint8), 8)
    with pytest.raises(ValueError, match="n_bits"):
        unpack_codes(np.zeros((2, 1), np.uint8), 0)


def test_concatenate_codes_keeps_rows_aligned():
    from hashlib_edu.codes import concatenate_codes

    a = np.array([[1, -1], [-1, -1], [1, 1]], np.int8)
    b = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]], np.uint8)  # {0, 1} form
    out = concatenate_codes(a, b)
    assert out.shape == (3, 5) and out.dtype == np.int8
    for i in range(3):  # row i of the ensemble = row i of each member
        assert out[i, :2].tolist() == a[i].tolist()
        assert out[i, 2:].tolist() == (2 * b[i].astype(int) - 1).tolist()
    assert np.array_equal(concatenate_codes([a, b]), out)
    with pytest.raises(ValueError, match="rows"):
        concatenate_codes(a, b[:2])
    with pytest.raises(ValueError, match="at least one"):
        concatenate_codes()


# --------------------------------------------------------------------------- quantization error


def _rescaled_error(v) -> torch.Tensor:
    """The per-row scale-free error ``||sqrt(K) v/||v|| - sign(v)||^2`` as a float tensor."""
    return torch.from_numpy(quantization_error(v, rescale=True, per_row=True)).float()


def test_quantization_error_hand_computation():
    # v = [[0.5, -2], [0, 1]] (0 is read as +1):
    #   sign(v) = [[1, -1], [1, 1]]; (sign - v)^2 rows: 0.25 + 1 = 1.25 and 1 + 0 = 1
    v = np.array([[0.5, -2.0], [0.0, 1.0]])
    rows = quantization_error(v, per_row=True)
    assert isinstance(rows, np.ndarray) and rows.dtype == np.float64 and rows.shape == (2,)
    np.testing.assert_allclose(rows, [1.25, 1.0], rtol=0, atol=1e-15)
    total = quantization_error(v)
    assert isinstance(total, float) and total == pytest.approx(2.25, abs=1e-15)
    assert quantization_error(torch.tensor(v)) == pytest.approx(2.25, abs=1e-15)  # torch too
    # with a rotation R = [[0, 1], [1, 0]] (swap the columns): v R = [[-2, 0.5], [1, 0]],
    # sign = [[-1, 1], [1, 1]] -> rows 1 + 0.25 = 1.25 and 0 + 1 = 1, as before
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(quantization_error(v, swap, per_row=True), [1.25, 1.0], atol=1e-15)
    # a rotation by 45 degrees: v R = [[(0.5-2)/sqrt2, (-0.5-2)/sqrt2], [1/sqrt2, 1/sqrt2]]
    c = 1 / math.sqrt(2)
    rot = np.array([[c, -c], [c, c]])
    vr = v @ rot
    hand = [(-1 - (0.5 - 2) * c) ** 2 + (-1 - (-0.5 - 2) * c) ** 2, 2 * (1 - c) ** 2]
    np.testing.assert_allclose(vr, [[-1.5 * c, -2.5 * c], [c, c]], atol=1e-15)
    np.testing.assert_allclose(quantization_error(v, rot, per_row=True), hand, rtol=1e-12)
    assert quantization_error(v, rot) == pytest.approx(sum(hand), rel=1e-12)
    # rescale: rows scaled to norm sqrt(2) first: row 0 -> sqrt2 (0.5, -2)/sqrt(4.25),
    # row 1 -> (0, sqrt2); errors (1 - a)^2 + (-1 + b)^2 and 1 + (1 - sqrt2)^2
    a, b = math.sqrt(2) * 0.5 / math.sqrt(4.25), math.sqrt(2) * 2 / math.sqrt(4.25)
    scaled = [(1 - a) ** 2 + (b - 1) ** 2, 1 + (1 - math.sqrt(2)) ** 2]
    np.testing.assert_allclose(quantization_error(v, rescale=True, per_row=True), scaled,
                               rtol=1e-12)
    assert quantization_error(v, rescale=True) == pytest.approx(sum(scaled), rel=1e-12)
    # rotation then rescale: the rows of v R = [[-1.5c, -2.5c], [c, c]] have norms
    # sqrt(4.25) and 1, and scale to norm sqrt2
    n0 = math.sqrt(4.25)
    p, q = math.sqrt(2) * 1.5 * c / n0, math.sqrt(2) * 2.5 * c / n0
    both = [(1 - p) ** 2 + (1 - q) ** 2, 2 * (1 - math.sqrt(2) * c) ** 2]
    np.testing.assert_allclose(quantization_error(v, rot, rescale=True, per_row=True), both,
                               rtol=1e-12, atol=1e-15)


def test_quantization_error_checks_its_input():
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        quantization_error(np.ones(4))
    with pytest.raises(ValueError, match="all zeros"):
        quantization_error(np.zeros((2, 3)), rescale=True)


def test_rescaled_quantization_error_bounds():
    g = torch.Generator().manual_seed(0)
    # any positive multiple of a +-1 vector has no quantization error
    b = torch.sign(torch.randn(3, 16, generator=g))
    assert torch.allclose(_rescaled_error(3.7 * b), torch.zeros(3), atol=1e-5)
    # worst case: a single axis, error 2K(1 - 1/sqrt(K)) = 2*16*(1 - 1/4) = 24
    e = torch.zeros(1, 16)
    e[0, 0] = 1.0
    assert _rescaled_error(e).item() == pytest.approx(24.0, abs=1e-4)


# --------------------------------------------------------------------------- code constructions


def test_check_target_sizes():
    assert check_target_sizes(10, 16) == (10, 16)
    for bad in ((0, 16), (10, 0)):
        with pytest.raises(ValueError, match="positive integers"):
            check_target_sizes(*bad)


@pytest.mark.parametrize("order", [1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 48, 64, 128])
def test_hadamard_matrix_is_orthogonal(order):
    h = hadamard_matrix(order)
    assert h.shape == (order, order)
    assert torch.equal(h @ h.T, order * torch.eye(order))


def test_hadamard_matrix_missing_orders():
    for order in (3, 6, 10, 52):
        assert hadamard_matrix(order) is None


def test_hadamard_targets_orthogonality_and_distance():
    from hashlib_edu.methods.orthohash import orthogonality_error

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
