"""The skip-or-fail rule of the reference fixtures (tests/conftest.py)."""

import pytest

import conftest


def test_missing_reference_skips_by_default(monkeypatch):
    monkeypatch.delenv(conftest.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        conftest._missing("reference library 'nope' is not installed: pip install nope")


def test_missing_reference_fails_when_required(monkeypatch):
    monkeypatch.setenv(conftest.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="is set, so this is a failure"):
        conftest._missing("reference library 'nope' is not installed: pip install nope")


def test_reference_imports_what_exists(reference):
    import math

    assert reference("math", "part of Python") is math
