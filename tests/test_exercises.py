"""The exercise checkers accept the package's functions and the instructor's solutions
(``solutions/exercise_solutions.py``), reject wrong ones with a hint, and say "Not yet
implemented" for a placeholder that raises ``NotImplementedError``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hashlib_edu.exercises import (
    check_dpah_bound,
    check_dsh_loss,
    check_knob_model,
    check_orthohash_loss,
    check_relaxed_hamming_distance,
)
from hashlib_edu.methods.cnnbh import CNNBHNet
from hashlib_edu.methods.dpah import dpah_inter_bound, dpah_inter_hinge, relaxed_hamming_distance
from hashlib_edu.methods.dsh import dsh_loss

SOLUTIONS_PATH = Path(__file__).resolve().parents[1] / "solutions" / "exercise_solutions.py"
SOLUTION_NAMES = ["dsh_loss", "knob_model", "dpah_bound", "relaxed_hamming_distance",
                  "orthohash_loss"]


def load_solutions():
    """Import ``solutions/exercise_solutions.py`` from its path (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("exercise_solutions", SOLUTIONS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def solutions():
    return load_solutions()


def loop_dsh_loss(outputs, labels, alpha, margin):
    """A student's straightforward version: a Python loop over the pairs i < j."""
    n, total, pairs = len(outputs), 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            d = ((outputs[i] - outputs[j]) ** 2).sum()
            y = float(labels[i] != labels[j])
            reg = (outputs[i].abs() - 1).abs().sum() + (outputs[j].abs() - 1).abs().sum()
            total = total + 0.5 * (1 - y) * d + 0.5 * y * torch.clamp(margin - d, min=0) + alpha * reg
            pairs += 1
    return total / pairs


def test_check_dsh_loss_accepts_correct_versions(capsys):
    assert check_dsh_loss(dsh_loss)
    assert check_dsh_loss(loop_dsh_loss)
    assert "Well done" in capsys.readouterr().out


def test_check_dsh_loss_rejects_wrong_versions(capsys):
    def per_item_alpha(outputs, labels, alpha, margin):
        return dsh_loss(outputs, labels, 0.0, margin) + alpha * (outputs.abs() - 1).abs().sum(1).mean()

    assert not check_dsh_loss(per_item_alpha)
    assert "2*alpha*mean_i" in capsys.readouterr().out

    def slightly_off(outputs, labels, alpha, margin):
        return loop_dsh_loss(outputs, labels, alpha, margin) * 1.01

    assert not check_dsh_loss(slightly_off)
    assert "expected 0.200000" in capsys.readouterr().out

    def crashes(outputs, labels, alpha, margin):
        raise RuntimeError("not implemented")

    assert not check_dsh_loss(crashes)
    assert "RuntimeError: not implemented" in capsys.readouterr().out


def test_check_dpah_bound(capsys):
    assert check_dpah_bound(dpah_inter_bound)

    def log_softmax_version(d_own, d_neg, alpha):
        logits = torch.cat([-(1 + alpha) * d_own[:, None], -d_neg], dim=1)
        return -torch.log_softmax(logits, dim=1)[:, 0]

    assert check_dpah_bound(log_softmax_version)
    assert "Well done" in capsys.readouterr().out

    assert not check_dpah_bound(dpah_inter_hinge)
    assert "hinge" in capsys.readouterr().out

    def naive(d_own, d_neg, alpha):
        return torch.log(1 + torch.exp((1 + alpha) * d_own) * torch.exp(-d_neg).sum(1))

    assert not check_dpah_bound(naive)
    assert "logsumexp" in capsys.readouterr().out

    def mean_only(d_own, d_neg, alpha):
        return dpah_inter_bound(d_own, d_neg, alpha).mean()

    assert not check_dpah_bound(mean_only)
    assert "one value per sample" in capsys.readouterr().out


# --------------------------------------------------------------------------- solutions


def test_solutions_file_imports():
    module = load_solutions()
    assert "instructor" in module.__doc__
    for name in SOLUTION_NAMES:
        assert callable(getattr(module, name)), name
    assert isinstance(module.knob_model(48), nn.Module)


@pytest.mark.parametrize("checker, name", [
    (check_dsh_loss, "dsh_loss"),
    (check_knob_model, "knob_model"),
    (check_dpah_bound, "dpah_bound"),
    (check_relaxed_hamming_distance, "relaxed_hamming_distance"),
    (check_orthohash_loss, "orthohash_loss"),
])
def test_each_solution_passes_its_checker(solutions, capsys, checker, name):
    assert checker(getattr(solutions, name)) is True
    out = capsys.readouterr().out
    assert out.startswith("All ") and out.endswith("Well done!\n") and out.count("\n") == 1


def test_solutions_are_not_the_package_functions(solutions):
    # the checkers compare with the package's code; a solution calling it could not fail
    import hashlib_edu

    for name in SOLUTION_NAMES:
        assert not getattr(getattr(solutions, name), "__module__", "").startswith(
            hashlib_edu.__name__), name


# --------------------------------------------------------------------------- not implemented


def placeholder(*args):
    raise NotImplementedError("write your code here")


class PlaceholderModel(nn.Module):
    def __init__(self, n_bits):
        super().__init__()
        raise NotImplementedError


class ModelWithoutForward(nn.Module):  # nn.Module's own forward raises NotImplementedError
    def __init__(self, n_bits):
        super().__init__()
        self.knob = nn.Linear(3 * 32 * 32, n_bits)


NOT_IMPLEMENTED = {
    check_dsh_loss: "the DSH loss (one number: the mean over the pairs i < j)",
    check_dpah_bound: "the DPAH inter-class bound (one value per sample, with logsumexp)",
    check_knob_model: "the knob model (its __init__, forward and embed)",
    check_relaxed_hamming_distance:
        "the relaxed Hamming distance (K - b @ theta.T) / 2, shape (n, C)",
    check_orthohash_loss: "the OrthoHash loss (the mean cross-entropy of the margin logits)",
}


@pytest.mark.parametrize("checker", list(NOT_IMPLEMENTED), ids=lambda c: c.__name__)
def test_checkers_say_not_yet_implemented(capsys, checker):
    expected = (f"Not yet implemented: {NOT_IMPLEMENTED[checker]}; fill it in and run this "
                "cell again.\n")
    students = ([PlaceholderModel, ModelWithoutForward] if checker is check_knob_model
                else [placeholder])
    for student in students:
        assert checker(student) is False
        out = capsys.readouterr().out
        assert out == expected  # one line, no traceback, nothing from the exception's text


# --------------------------------------------------------------------------- typical mistakes


def test_check_dsh_loss_hints(solutions, capsys):
    def no_regularizer(outputs, labels, alpha, margin):
        return solutions.dsh_loss(outputs, labels, 0.0, margin)

    assert not check_dsh_loss(no_regularizer)
    assert "regularizer || |b| - 1 ||_1 seems to be missing" in capsys.readouterr().out

    def summed(outputs, labels, alpha, margin):
        n = outputs.shape[0]
        return solutions.dsh_loss(outputs, labels, alpha, margin) * (n * (n - 1) / 2)

    assert not check_dsh_loss(summed)
    assert "looks like a sum over pairs" in capsys.readouterr().out


def test_check_dpah_bound_hints(solutions, capsys):
    def no_alpha(d_own, d_neg, alpha):
        return solutions.dpah_bound(d_own, d_neg, 0.0)

    assert not check_dpah_bound(no_alpha)
    assert "factor (1 + alpha)" in capsys.readouterr().out

    def positive_logits(d_own, d_neg, alpha):
        a = (1 + alpha) * d_own
        return torch.logsumexp(torch.cat([a[:, None], d_neg], dim=1), dim=1) - a

    assert not check_dpah_bound(positive_logits)
    assert "the logits are the *negative* distances" in capsys.readouterr().out


def test_check_knob_model_hints(solutions, capsys):
    assert not check_knob_model(lambda n_bits: CNNBHNet(n_bits, batchnorm=True))
    assert "the paper has no BatchNorm" in capsys.readouterr().out

    class FloorPooling(solutions.KnobModel):  # 32 -> 15 -> 7 -> 3
        def __init__(self, n_bits):
            super().__init__(n_bits)
            for layer in self.features:
                if isinstance(layer, nn.MaxPool2d):
                    layer.ceil_mode = False
            self.knob = nn.Linear(64 * 3 * 3, n_bits)

    assert not check_knob_model(FloorPooling)
    assert "ceil_mode=True" in capsys.readouterr().out


def test_check_relaxed_hamming_distance(capsys):
    assert check_relaxed_hamming_distance(relaxed_hamming_distance)
    assert "Well done" in capsys.readouterr().out

    def no_half(b, theta):
        return b.shape[1] - b @ theta.T

    assert not check_relaxed_hamming_distance(no_half)
    assert "twice the distance" in capsys.readouterr().out

    def plus(b, theta):
        return (b.shape[1] + b @ theta.T) / 2

    assert not check_relaxed_hamming_distance(plus)
    assert "negated position -theta" in capsys.readouterr().out

    def similarity(b, theta):
        return b @ theta.T

    assert not check_relaxed_hamming_distance(similarity)
    assert "a similarity" in capsys.readouterr().out

    def transposed(b, theta):
        return (b.shape[1] - theta @ b.T) / 2

    assert not check_relaxed_hamming_distance(transposed)
    assert "(C, n) transpose" in capsys.readouterr().out


def _orthohash(v, y, targets, scale, margin, *, normalize_v=True, margin_sign=-1.0,
               every_class=False, reduction="mean"):
    """OrthoCos with switches for the typical mistakes."""
    codes = F.normalize(v, dim=1) if normalize_v else v
    cos = codes @ F.normalize(targets, dim=1).T
    shift = torch.ones_like(cos) if every_class else F.one_hot(y, targets.shape[0]).to(cos)
    return F.cross_entropy(scale * (cos + margin_sign * margin * shift), y, reduction=reduction)


def test_check_orthohash_loss(solutions, capsys):
    assert check_orthohash_loss(_orthohash)
    assert "Well done" in capsys.readouterr().out

    mistakes = [
        ({"every_class": True}, "subtracted from every class"),
        ({"margin_sign": 1.0}, "the margin is added to the true class's cosine"),
        ({"normalize_v": False}, "the codes v are not L2-normalized"),
        ({"reduction": "none"}, "those are the per-sample losses; return their mean"),
    ]
    for switches, hint in mistakes:
        assert not check_orthohash_loss(lambda *args, s=switches: _orthohash(*args, **s))
        assert hint in capsys.readouterr().out, switches

    def no_scale(v, y, targets, scale, margin):
        return solutions.orthohash_loss(v, y, targets, 1.0, margin)

    assert not check_orthohash_loss(no_scale)
    assert "the scale seems to be missing" in capsys.readouterr().out

    def dot_products(v, y, targets, scale, margin):
        logits = scale * (v @ targets.T - margin * F.one_hot(y, targets.shape[0]).to(v))
        return F.cross_entropy(logits, y)

    assert not check_orthohash_loss(dot_products)
    assert "those are dot products v . t, not cosines" in capsys.readouterr().out
