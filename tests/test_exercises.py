"""The exercise checkers accept the package's functions and reject wrong ones with a hint."""

from __future__ import annotations

import torch

from hashlib_edu.exercises import check_dpah_bound, check_dsh_loss
from hashlib_edu.methods.dpah import dpah_inter_bound, dpah_inter_hinge
from hashlib_edu.methods.dsh import dsh_loss


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
