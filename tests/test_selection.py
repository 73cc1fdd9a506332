"""The choice rule: ahead on average by more than the margin and on every seed."""

import pytest

from hashlib_edu.selection import TIE_MARGIN, choose


def test_the_rule_switches_only_with_a_lead_on_average_and_on_every_seed():
    sgd = {0: 0.50, 1: 0.52, 2: 0.51}
    assert choose("sgd", "adamw", sgd, {0: 0.52, 1: 0.54, 2: 0.53}).switch  # +0.02 everywhere
    # ahead on average by more than the margin, but behind on one seed
    mixed = choose("sgd", "adamw", sgd, {0: 0.56, 1: 0.55, 2: 0.50})
    assert mixed.mean_gap > TIE_MARGIN and not mixed.switch and mixed.chosen == "sgd"
    # ahead on every seed, but by a tie on average
    tie = choose("sgd", "adamw", sgd, {0: 0.505, 1: 0.525, 2: 0.515})
    assert not tie.switch and tie.gaps == pytest.approx({0: 0.005, 1: 0.005, 2: 0.005})
    assert "keep sgd" in tie.describe() and "+0.005" in tie.describe()


def test_the_same_seeds_are_compared():
    with pytest.raises(ValueError, match="same seeds"):
        choose("a", "b", {0: 0.5, 1: 0.5}, {0: 0.5, 2: 0.5})
    with pytest.raises(ValueError, match="same seeds"):
        choose("a", "b", {}, {})
