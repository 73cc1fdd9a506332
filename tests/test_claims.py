"""claim(): a stale sentence stops a real run, and never a smoke run."""

import pytest

from hashlib_edu import claim
from hashlib_edu.claims import ClaimError


def test_a_false_claim_stops_a_real_run_with_its_sentence(monkeypatch):
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "quick")
    assert claim(0.64 > 0.59, "DPAH leads CNNBH at 48 bits") is True
    with pytest.raises(ClaimError, match="'CNNBH leads DPAH at 48 bits'"):
        claim(0.59 > 0.64, "CNNBH leads DPAH at 48 bits")


def test_smoke_runs_do_not_check_claims(monkeypatch):
    monkeypatch.setenv("HASHLIB_EDU_PROFILE", "smoke")
    assert claim(False, "anything about tiny data") is False
