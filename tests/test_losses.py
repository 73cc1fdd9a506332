"""hashlib_edu.losses: labels and pair similarity, the input checks, the HashingLoss base and
the shared pieces (pairwise distances, DSH's regularizer) -- and the contract every method's loss
keeps through them (codes, clear errors on bad inputs and sizes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashlib_edu.losses import (
    HashingLoss,
    as_label_tensor,
    check_label_count,
    check_outputs,
    check_positive,
    check_sizes,
    dsh_regularizer,
    pairwise_squared_distances,
    similarity_matrix,
    to_multi_hot,
)
from hashlib_edu.methods.dpah import DPAHLoss
from hashlib_edu.methods.dsh import DSHLoss, DSHSigmoidLoss
from hashlib_edu.methods.orthohash import OrthoHashLoss

DTYPE = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=DTYPE)


# --------------------------------------------------------------------------- labels


def test_similarity_matrix_class_ids_and_multi_hot():
    s = similarity_matrix(torch.tensor([0, 1, 0]))
    assert s.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    multi = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 0, 0]])
    # rows 0 and 1 share class 2; rows 1 and 2 share nothing
    assert similarity_matrix(multi).tolist() == [
        [True, True, True], [True, True, False], [True, False, True]]
    # class ids against multi-hot rows
    assert similarity_matrix(torch.tensor([2]), multi).tolist() == [[True, True, False]]


def test_to_multi_hot_checks():
    assert to_multi_hot(torch.tensor([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="out of range"):
        to_multi_hot(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="integers"):
        to_multi_hot(torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="only 0 and 1"):
        to_multi_hot(torch.tensor([[0.5, 0.5, 0.0]]), 3)
    with pytest.raises(ValueError, match="3 columns"):
        to_multi_hot(torch.tensor([[1, 0, 0]]), 4)
    with pytest.raises(ValueError, match="2 labels for 3 outputs"):
        to_multi_hot(torch.tensor([0, 1]), 3, n_items=3)


def test_as_label_tensor():
    assert torch.equal(as_label_tensor(np.array([0, 2])), torch.tensor([0, 2]))
    assert as_label_tensor([[1, 0], [0, 1]]).shape == (2, 2)
    y = torch.tensor([1, 0])
    assert as_label_tensor(y) is y
    with pytest.raises(ValueError, match="class ids or"):
        as_label_tensor(torch.zeros(2, 2, 2))


# --------------------------------------------------------------------------- checks


def test_check_outputs():
    x = torch.zeros(3, 4)
    assert check_outputs(x) is x and check_outputs(x, 4) is x
    with pytest.raises(TypeError, match="torch tensor"):
        check_outputs(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="2-D"):
        check_outputs(torch.zeros(3))
    with pytest.raises(ValueError, match="real-valued"):
        check_outputs(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        check_outputs(torch.zeros(0, 4))
    with pytest.raises(ValueError, match="n_bits=5"):
        check_outputs(x, 5)


def test_check_positive_and_sizes():
    assert check_positive(2, "alpha") == 2.0
    assert check_positive(0, "alpha", allow_zero=True) == 0.0
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
            check_positive(bad, "alpha")
    with pytest.raises(ValueError, match=">= 0"):
        check_positive(-1.0, "alpha", allow_zero=True)
    assert check_sizes(8) == (8, None) and check_sizes(8.0, 10) == (8, 10)
    with pytest.raises(ValueError, match="need n_bits >= 1; got n_bits=0"):
        check_sizes(0)
    with pytest.raises(ValueError, match="n_classes >= 2"):
        check_sizes(8, 1)


def test_check_label_count():
    y = check_label_count(np.array([0, 1, 1]), 3)
    assert torch.is_tensor(y) and y.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="got 2 labels for 3 outputs"):
        check_label_count([0, 1], 3)


def test_pairwise_squared_distances():
    x = torch.randn(6, 4, dtype=DTYPE)
    assert torch.allclose(pairwise_squared_distances(x), torch.cdist(x, x) ** 2, atol=1e-10)


def test_dsh_regularizer():
    # r_i = sum_k | |b_ik| - 1 |: (0 + 0.5 + 0.5) and (1 + 0 + 2)
    b = t([[1.0, -0.5, 1.5], [0.0, -1.0, 3.0]])
    assert dsh_regularizer(b).tolist() == [1.0, 3.0]


def test_hashing_loss_codes_use_the_threshold():
    class Half(HashingLoss):
        threshold = 0.5

    x = t([[0.5, 0.2, 0.9]])
    np.testing.assert_array_equal(HashingLoss().codes(x), [[1, 1, 1]])
    np.testing.assert_array_equal(Half().codes(x), [[1, -1, 1]])


# --------------------------------------------------------------------------- every method's loss


def test_codes_are_signs_with_zero_positive():
    x = t([[0.0, -0.1, 2.0], [-3.0, 0.2, -0.0]])
    expected = np.array([[1, -1, 1], [-1, 1, 1]], dtype=np.int8)
    for loss in (DSHLoss(3), DPAHLoss(3, 2), OrthoHashLoss(3, 2)):
        assert loss.threshold == 0.0
        np.testing.assert_array_equal(loss.codes(x), expected)


@pytest.mark.parametrize(
    "make", [lambda: DSHLoss(4), lambda: DSHSigmoidLoss(4), lambda: DPAHLoss(4, 3),
             lambda: OrthoHashLoss(4, 3)])
def test_bad_inputs_raise_clear_errors(make):
    loss = make()
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="n_bits=4"):
        loss(torch.randn(3, 5), y)
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.randn(3, 4, 1), y)
    with pytest.raises(ValueError, match="2 labels for 3 outputs|got 2 labels"):
        loss(torch.randn(3, 4), y[:2])
    with pytest.raises(ValueError, match="class id"):
        loss(torch.randn(3, 4), torch.tensor([0, 1, -1]) if isinstance(loss, (DSHLoss, DSHSigmoidLoss))
             else torch.tensor([0, 1, 3]))


@pytest.mark.parametrize("make", [lambda: DSHLoss(0), lambda: DSHSigmoidLoss(0),
                                  lambda: DPAHLoss(0, 10), lambda: DPAHLoss(8, 1),
                                  lambda: OrthoHashLoss(0, 10), lambda: OrthoHashLoss(8, 1)])
def test_sizes_are_checked_with_a_clear_message(make):
    with pytest.raises(ValueError, match="need n_bits >= 1"):
        make()
