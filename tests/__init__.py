"""Tests of the hashlib_edu package (a package so that test modules may share basenames)."""
