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

from hashlib_edu.codes import bernoulli_targets
from hashlib_edu.exercises import (
    check_dpah_bound,
    check_dsh_loss,
    check_dsh_regularizer,
    check_itq_rotation_step,
    check_knob_model,
    check_lsh_codes,
    check_maxhd_targets,
    check_orthohash_loss,
    check_relaxed_hamming_distance,
    check_training_step,
)
from hashlib_edu.losses import dsh_regularizer
from hashlib_edu.methods.cnnbh import CNNBHNet
from hashlib_edu.methods.dpah import dpah_inter_bound, dpah_inter_hinge, relaxed_hamming_distance
from hashlib_edu.methods.dsh import dsh_loss
from hashlib_edu.methods.orthohash import maxhd_targets

SOLUTIONS_PATH = Path(__file__).resolve().parents[1] / "solutions" / "exercise_solutions.py"
SOLUTION_NAMES = ["dsh_loss", "knob_model", "dpah_bound", "relaxed_hamming_distance",
                  "orthohash_loss", "itq_rotation_step", "training_step", "dsh_regularizer",
                  "maxhd_targets", "lsh_codes"]


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
    (check_itq_rotation_step, "itq_rotation_step"),
    (check_training_step, "training_step"),
    (check_dsh_regularizer, "dsh_regularizer"),
    (check_maxhd_targets, "maxhd_targets"),
    (check_lsh_codes, "lsh_codes"),
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
    check_itq_rotation_step:
        "the ITQ rotation step R = U Z^T from the SVD V^T B = U S Z^T, shape (c, c)",
    check_training_step: "one training step (zero_grad, forward, loss, backward, step)",
    check_dsh_regularizer:
        "the DSH regularizer || |b_i| - 1 ||_1, one value per item, shape (n,)",
    check_maxhd_targets: "the MaxHD targets of Algorithm 3, a (C, K) tensor of +-1",
    check_lsh_codes: "the LSH codes sign((x - mean) @ projections) in {-1, +1}, shape (n, k)",
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


# --------------------------------------------------------------------------- ITQ rotation step


def _procrustes_factors(V, B):
    u, _s, zt = torch.linalg.svd(V.T @ B)
    return u, zt


def test_check_itq_rotation_step(capsys):
    def torch_version(V, B):
        u, zt = _procrustes_factors(V, B)
        return u @ zt

    assert check_itq_rotation_step(torch_version)
    assert "Well done" in capsys.readouterr().out

    def polar_version(V, B):  # the same R from the polar decomposition M (M^T M)^(-1/2)
        m = V.T @ B
        evals, evecs = torch.linalg.eigh(m.T @ m)
        return m @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T

    assert check_itq_rotation_step(polar_version)
    assert "Well done" in capsys.readouterr().out


def test_check_itq_rotation_step_hints(capsys):
    def transposed(V, B):
        u, zt = _procrustes_factors(V, B)
        return zt.T @ u.T

    def svd_of_bt_v(V, B):
        u, _s, zt = torch.linalg.svd(B.T @ V)
        return u @ zt

    for wrong in (transposed, svd_of_bt_v):  # B^T V = Z S U^T: both give R^T
        assert check_itq_rotation_step(wrong) is False
        assert "that is R^T = Z U^T" in capsys.readouterr().out, wrong.__name__

    def u_alone(V, B):
        return _procrustes_factors(V, B)[0]

    assert check_itq_rotation_step(u_alone) is False
    assert "that is U alone" in capsys.readouterr().out

    def z_alone(V, B):
        return _procrustes_factors(V, B)[1].T

    assert check_itq_rotation_step(z_alone) is False
    assert "that is Z (or Z^T) alone" in capsys.readouterr().out

    def double_transpose(V, B):
        u, zt = _procrustes_factors(V, B)
        return u @ zt.T

    assert check_itq_rotation_step(double_transpose) is False
    assert "already returns Z^T" in capsys.readouterr().out

    def least_squares(V, B):
        return torch.linalg.lstsq(V, B).solution

    assert check_itq_rotation_step(least_squares) is False
    assert "unconstrained least-squares solution" in capsys.readouterr().out

    def scaled(V, B):
        u, zt = _procrustes_factors(V, B)
        return 2.0 * u @ zt

    assert check_itq_rotation_step(scaled) is False
    assert "your R is not orthogonal" in capsys.readouterr().out

    def rotated_data(V, B):
        u, zt = _procrustes_factors(V, B)
        return V @ u @ zt

    assert check_itq_rotation_step(rotated_data) is False
    assert "that is the (n, c) rotated data V @ R" in capsys.readouterr().out


# --------------------------------------------------------------------------- training step


def test_check_training_step_ignores_the_return_value(capsys):
    def no_return(model, images, labels, optimizer, loss_fn):
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()  # before backward is all that matters
        loss.backward()
        optimizer.step()

    assert check_training_step(no_return) is True
    assert "All 2 cases match" in capsys.readouterr().out


def test_check_training_step_hints(capsys):
    def no_zero_grad(model, images, labels, optimizer, loss_fn):
        loss_fn(model(images), labels).backward()
        optimizer.step()

    assert check_training_step(no_zero_grad) is False
    out = capsys.readouterr().out
    assert "step 2 of 2" in out and "optimizer.zero_grad() seems to be missing" in out

    def no_step(model, images, labels, optimizer, loss_fn):
        optimizer.zero_grad()
        loss_fn(model(images), labels).backward()

    assert check_training_step(no_step) is False
    assert "optimizer.step() seems to be missing" in capsys.readouterr().out

    def step_before_backward(model, images, labels, optimizer, loss_fn):
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        optimizer.step()
        loss.backward()

    assert check_training_step(step_before_backward) is False
    assert "step() seems to come before loss.backward()" in capsys.readouterr().out

    def summed_loss(model, images, labels, optimizer, loss_fn):
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels, reduction="sum").backward()
        optimizer.step()

    assert check_training_step(summed_loss) is False
    assert "that is a summed loss" in capsys.readouterr().out

    def own_optimizer(model, images, labels, optimizer, loss_fn):
        mine = torch.optim.SGD(model.parameters(), lr=0.1)
        mine.zero_grad()
        loss_fn(model(images), labels).backward()
        mine.step()

    assert check_training_step(own_optimizer) is False
    assert "the optimizer you were given was never stepped" in capsys.readouterr().out

    def crashes(model, images, labels, optimizer, loss_fn):
        loss_fn(model(images[0]), labels).backward()  # (3, 8, 8) flattens to (3, 64)

    assert check_training_step(crashes) is False
    assert "step 1 of 2: your function raised" in capsys.readouterr().out


# --------------------------------------------------------------------------- DSH regularizer


def test_check_dsh_regularizer(capsys):
    assert check_dsh_regularizer(dsh_regularizer)
    assert "Well done" in capsys.readouterr().out

    mistakes = [
        (lambda b: ((b.abs() - 1) ** 2).sum(1), "the squared L2 version"),
        (lambda b: (b - 1).abs().sum(1), "the inner abs is missing"),
        (lambda b: (b.abs() - 1).abs().mean(1), "that is the mean over the bits"),
        (lambda b: (b.abs() - 1).sum(1), "the outer abs is missing"),
        (lambda b: (b.abs() - 1).abs().sum(1).mean(), "that is the batch mean"),
        (lambda b: (b.abs() - 1).abs(), "sum them over the bits (dim=1)"),
    ]
    for wrong, hint in mistakes:
        assert check_dsh_regularizer(wrong) is False
        assert hint in capsys.readouterr().out, hint


# --------------------------------------------------------------------------- MaxHD targets


def test_check_maxhd_targets_accepts_the_package(capsys):
    assert check_maxhd_targets(maxhd_targets) is True
    assert "All 3 cases match" in capsys.readouterr().out


def test_check_maxhd_targets_hints(solutions, capsys):
    def bernoulli(n_classes, n_bits, seed):
        return bernoulli_targets(n_classes, n_bits, seed=seed)

    assert check_maxhd_targets(bernoulli) is False
    out = capsys.readouterr().out
    assert "minimum Hamming distance is" in out and "no better than Bernoulli" in out

    def zero_one(n_classes, n_bits, seed):
        return (solutions.maxhd_targets(n_classes, n_bits, seed) + 1) / 2

    assert check_maxhd_targets(zero_one) is False
    assert "those are {0, 1} bits" in capsys.readouterr().out

    def repeated(n_classes, n_bits, seed):
        targets = solutions.maxhd_targets(n_classes, n_bits, seed)
        targets[1] = targets[0]
        return targets

    assert check_maxhd_targets(repeated) is False
    assert "classes 0 and 1 have the same target" in capsys.readouterr().out

    def transposed(n_classes, n_bits, seed):
        return solutions.maxhd_targets(n_classes, n_bits, seed).T

    assert check_maxhd_targets(transposed) is False
    assert "the (K, C) transpose" in capsys.readouterr().out

    def impatient(n_classes, n_bits, seed):  # currdist lowered after 10 rejections, not 10,000
        return solutions.maxhd_targets(n_classes, n_bits, seed, max_tries=10)

    assert check_maxhd_targets(impatient) is False
    assert "currdist seems to drop too early" in capsys.readouterr().out


def test_check_lsh_codes_hints(capsys):
    def codes(v):
        return torch.where(v >= 0, 1.0, -1.0)

    wrong = {
        "torch.sign(0) = 0": lambda x, m, w: torch.sign((x - m) @ w),
        "not centered": lambda x, m, w: codes(x @ w),
        "{0, 1} bits": lambda x, m, w: ((x - m) @ w >= 0).double(),
        "mean of x itself": lambda x, m, w: codes((x - x.mean(dim=0)) @ w),
        "signs are flipped": lambda x, m, w: -codes((x - m) @ w),
        "transpose": lambda x, m, w: codes(w.T @ (x - m).T),
    }
    for hint, student in wrong.items():
        assert check_lsh_codes(student) is False, hint
        assert hint in capsys.readouterr().out, hint
    assert check_lsh_codes(lambda x, m, w: codes((x - m) @ w).numpy()) is True  # arrays too

