"""hashlib_edu.codes: sign convention, {-1,+1} <-> {0,1}, bit packing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashlib_edu.codes import (
    as_numpy,
    check_binary,
    pack_codes,
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
