"""Regimes: which backbone a notebook trains on, and what each regime allows."""

from __future__ import annotations

import pytest

from hashlib_edu import Experiment
from hashlib_edu.regimes import choose_backbone


def test_choose_backbone_defaults_per_profile_and_rejects_unknown_names():
    quick = choose_backbone(None, "quick")
    assert quick == ("small", "scratch") and "from scratch" in quick.describe()
    assert quick.fields == {"regime": "scratch", "backbone": None}
    paper = choose_backbone(None, "paper")
    assert paper == ("alexnet", "finetune") and "ImageNet-pretrained" in paper.describe()
    assert paper.fields == {"regime": "finetune", "backbone": "alexnet"}
    assert choose_backbone("small", "paper").regime == "scratch"
    with pytest.raises(ValueError, match="BACKBONE"):
        choose_backbone("vgg16", "quick")


def test_a_choice_makes_an_experiment():
    for name, profile in (("small", "quick"), ("resnet50", "smoke")):
        choice = choose_backbone(name, profile)
        e = Experiment("orthohash", 16, profile=profile, **choice.fields)
        assert e.regime == choice.regime
        assert e.backbone == ("small" if name == "small" else name)


def test_finetune_on_a_cpu_warns_with_the_estimate(recwarn):
    from hashlib_edu.regimes import warn_if_slow

    warn_if_slow("finetune", "efficientnet_lite0", 10, "cpu")
    (warning,) = recwarn.list
    assert "GPU" in str(warning.message) and "h for 10 epochs" in str(warning.message)
    warn_if_slow("finetune-last", "efficientnet_lite0", 10, "cpu")
    assert len(recwarn.list) == 1
