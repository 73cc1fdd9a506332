"""Tests of hashlib_edu.methods, one file per method module."""
