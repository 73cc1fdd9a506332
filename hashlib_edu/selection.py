"""The one rule by which the course chooses a setting on its validation split.

One seed is not enough to choose: retraining with another seed moves a model by about as much
as a setting does. So a challenger replaces the incumbent setting only if, over the same
seeds, it is ahead **on average by more than** :data:`TIE_MARGIN` **and on every seed**; else
the incumbent stays. Notebooks compare at the budget the headline trains with (a setting
chosen after a short schedule need not be the best after a long one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TIE_MARGIN", "Choice", "choose"]

#: Differences of validation mAP up to this are ties.
TIE_MARGIN = 0.01


@dataclass(frozen=True)
class Choice:
    """The rule applied to one comparison: scores by seed, the gaps and the verdict."""

    incumbent: str
    challenger: str
    incumbent_scores: Mapping[int, float]
    challenger_scores: Mapping[int, float]
    margin: float = TIE_MARGIN

    @property
    def gaps(self) -> dict[int, float]:
        """Challenger minus incumbent, by seed."""
        return {s: self.challenger_scores[s] - self.incumbent_scores[s]
                for s in sorted(self.incumbent_scores)}

    @property
    def mean_gap(self) -> float:
        return sum(self.gaps.values()) / len(self.gaps)

    @property
    def switch(self) -> bool:
        """Ahead on average by more than the margin, and on every seed."""
        return self.mean_gap > self.margin and all(g > 0 for g in self.gaps.values())

    @property
    def chosen(self) -> str:
        return self.challenger if self.switch else self.incumbent

    def describe(self) -> str:
        """One sentence: the per-seed gaps and the verdict."""
        gaps = ", ".join(f"{g:+.3f}" for g in self.gaps.values())
        verdict = (f"switch to {self.challenger}" if self.switch else
                   f"keep {self.incumbent}")
        return (f"{self.challenger} minus {self.incumbent} by seed: {gaps} (mean "
                f"{self.mean_gap:+.3f}; the rule asks for a mean above {self.margin:g} and a "
                f"lead on every seed): {verdict}.")


def choose(incumbent: str, challenger: str, incumbent_scores: Mapping[int, float],
           challenger_scores: Mapping[int, float], margin: float = TIE_MARGIN) -> Choice:
    """Apply the rule (see the module's docstring).

    Args:
        incumbent, challenger: the two settings' names.
        incumbent_scores, challenger_scores: validation scores by seed (the same seeds).

    Raises:
        ValueError: when the seeds differ or there are none.
    """
    if set(incumbent_scores) != set(challenger_scores) or not incumbent_scores:
        raise ValueError(f"compare the same seeds: {sorted(incumbent_scores)} vs "
                         f"{sorted(challenger_scores)}.")
    return Choice(incumbent, challenger, dict(incumbent_scores), dict(challenger_scores), margin)
