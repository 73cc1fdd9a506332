"""The checkpoint names of the course's trained models, pinned: a model trained before the
"one method, one module" refactor must still load (a finished checkpoint is found by its name
alone). The expected names were computed with the pre-refactor code (``recipes.train_hashnet``
and friends); nothing is trained here -- ``train_model`` is replaced by a stub that records the
name it is given and stops."""

from __future__ import annotations

import types

import pytest

import hashlib_edu.methods.cnnbh as cnnbh_module
import hashlib_edu.training as training_module
from hashlib_edu.methods.cnnbh import (
    cnnbh_plain_recipe,
    cnnbh_recipe,
    cnnbh_sgd_recipe,
    train_cnnbh,
)
from hashlib_edu.methods.dpah import dpah_loss, dpah_recipe, train_dpah
from hashlib_edu.methods.dsh import DSHLoss, dsh_recipe, train_dsh
from hashlib_edu.methods.orthohash import orthohash_loss, orthohash_recipe, train_orthohash
from hashlib_edu.training import code_layer_recipe, train_with_code_layer


class _Stop(Exception):
    """Raised by the stub instead of training."""


@pytest.fixture()
def checkpoint_name(monkeypatch):
    """``checkpoint_name(call)``: the ``name=`` that ``call()`` passes to ``train_model``."""
    names: list[str] = []

    def record(*args, name, **kwargs):
        names.append(name)
        raise _Stop

    # train_with_code_layer / train_dsh reach train_model through hashlib_edu.training;
    # train_cnnbh through the name it imported into its own module
    monkeypatch.setattr(training_module, "train_model", record)
    monkeypatch.setattr(cnnbh_module, "train_model", record)

    def run(call) -> str:
        before = len(names)
        with pytest.raises(_Stop):
            call()
        assert len(names) == before + 1, "train_model was not called exactly once"
        return names[-1]

    return run


def data(protocol: str, n_classes: int | None = None) -> types.SimpleNamespace:
    """What a train function reads of a ``ProtocolData`` to name its checkpoint (and, for the
    defaults of train_orthohash / train_dpah, the number of classes)."""
    fake = types.SimpleNamespace(protocol=protocol, profile="quick")
    if n_classes is not None:
        fake.dataset = types.SimpleNamespace(classes=[f"class{i}" for i in range(n_classes)])
    return fake


EXPECTED = {
    "cnnbh-48": (
        lambda: train_cnnbh(data("cifar10-1k"), 48, cnnbh_recipe(60)),
        "cifar10-1k-cnnbh-48-seed0-698dfc2d"),
    "cnnbh-48-sgd": (
        lambda: train_cnnbh(data("cifar10-1k"), 48, cnnbh_sgd_recipe(60)),
        "cifar10-1k-cnnbh-48-seed0-25a002c0"),
    "cnnbh-12-plain": (
        lambda: train_cnnbh(data("cifar10-1k"), 12, cnnbh_plain_recipe(60)),
        "cifar10-1k-cnnbh-12-seed0-7cbaaf61"),
    "dsh-small-48": (
        lambda: train_with_code_layer(data("cifar10-1k"), 48, DSHLoss(48, alpha=0.01),
                                      code_layer_recipe(50), method="dsh"),
        "cifar10-1k-dsh-48-seed0-828b43d2"),
    "dpah-48": (
        lambda: train_with_code_layer(data("cifar10-1k"), 48, dpah_loss(48, 10), dpah_recipe(60),
                                      method="dpah", latent_bn=True),
        "cifar10-1k-dpah-48-seed0-315525f8"),
    "dpah-48-alpha0.5": (
        lambda: train_with_code_layer(data("cifar10-1k"), 48, dpah_loss(48, 10, alpha=0.5),
                                      dpah_recipe(60), method="dpah", latent_bn=True),
        "cifar10-1k-dpah-48-seed0-f0a179fe"),
    "orthohash-48": (
        lambda: train_with_code_layer(data("cifar10-1k"), 48, orthohash_loss(48, 10),
                                      orthohash_recipe(60), method="orthohash", latent_bn=True),
        "cifar10-1k-orthohash-48-seed0-634a0f2a"),
    "orthohash-32-bern": (
        lambda: train_with_code_layer(data("cifar10-1k"), 32,
                                      orthohash_loss(32, 10, targets="bernoulli", margin=0.2),
                                      orthohash_recipe(15), method="orthohash", latent_bn=True),
        "cifar10-1k-orthohash-32-seed0-7fec1b5a"),
    "dshnet-12-dsh": (
        lambda: train_dsh(data("cifar10-dsh"), 12, DSHLoss(12, alpha=0.01), dsh_recipe(26)),
        "cifar10-dsh-dsh-12-seed0-2915fb97"),
    "orthohash-48-dsh-ep30": (
        lambda: train_with_code_layer(data("cifar10-dsh"), 48, orthohash_loss(48, 10),
                                      orthohash_recipe(30), method="orthohash", latent_bn=True),
        "cifar10-dsh-orthohash-48-seed0-c0690958"),
    "dpah-48-dsh-ep30": (
        lambda: train_with_code_layer(data("cifar10-dsh"), 48, dpah_loss(48, 10, alpha=0.5),
                                      dpah_recipe(30),
                                      method="dpah", latent_bn=True),
        "cifar10-dsh-dpah-48-seed0-bc375f7d"),
    "cnnbh-48-dsh-ep30": (
        lambda: train_cnnbh(data("cifar10-dsh"), 48, cnnbh_sgd_recipe(30)),
        "cifar10-dsh-cnnbh-48-seed0-0deefade"),
    "dsh-48-dsh": (
        lambda: train_dsh(data("cifar10-dsh"), 48, DSHLoss(48, alpha=0.01), dsh_recipe(26)),
        "cifar10-dsh-dsh-48-seed0-03e457d6"),
}


@pytest.mark.parametrize("run", list(EXPECTED))
def test_checkpoint_names_are_unchanged(run, checkpoint_name):
    call, expected = EXPECTED[run]
    assert checkpoint_name(call) == expected


def test_method_train_functions_default_to_the_course_settings(checkpoint_name):
    """train_orthohash / train_dpah with their defaults (the course settings, the profile's
    epochs) name the same checkpoints as the explicit calls above."""
    quick = data("cifar10-1k", n_classes=10)
    assert checkpoint_name(lambda: train_orthohash(quick, 48)) == EXPECTED["orthohash-48"][1]
    assert checkpoint_name(lambda: train_dpah(quick, 48)) == EXPECTED["dpah-48"][1]

