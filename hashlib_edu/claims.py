"""Sentences of the course's text that state our own results, checked against each run.

A notebook states what its run found ("DPAH leads CNNBH by more than 0.01 at 48 bits"). When a
re-run moves the numbers, such a sentence can go stale silently; :func:`claim` makes it fail
loudly instead::

    claim(gap > 0.01, "DPAH leads CNNBH by more than 0.01 at 48 bits")

Under ``quick`` and ``paper`` a false claim raises :class:`ClaimError` quoting the sentence, so
the notebook stops at the text that broke; under ``smoke`` (tiny data, one epoch: numbers
that mean nothing) claims are not checked.
"""

from __future__ import annotations

from .profiles import get_profile

__all__ = ["ClaimError", "claim"]


class ClaimError(AssertionError):
    """A sentence of the text that this run's numbers no longer support."""


def claim(condition: object, sentence: str) -> bool:
    """Check that ``sentence`` -- a statement of the text about this run's results -- holds.

    Args:
        condition: what makes the sentence true, computed from this run's results.
        sentence: the sentence as the text states it.

    Returns:
        ``True`` when it holds, ``False`` under ``smoke`` when it does not (not checked there).

    Raises:
        ClaimError: under ``quick`` / ``paper`` when ``condition`` is false: edit the text (or
            find out why the numbers moved).
    """
    holds = bool(condition)
    if not holds and get_profile() != "smoke":
        raise ClaimError(f"The text says: {sentence!r} -- this run's results do not support it. "
                         "Update the text to what the numbers now show (or find out why they "
                         "moved).")
    return holds
