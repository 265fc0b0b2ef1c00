import pytest

from tsrobust.book import browser_check


def test_chromium_from_the_environment_variable_comes_first(tmp_path, monkeypatch):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TSROBUST_CHROMIUM", str(fake))
    assert browser_check.find_chromium() == str(fake)


def test_no_chromium_is_an_error_that_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("TSROBUST_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(browser_check.CheckError, match="apt-get install chromium"):
        browser_check.find_chromium()


def test_checking_an_unbuilt_book_says_to_build_it(tmp_path):
    pytest.importorskip("playwright")
    with pytest.raises(browser_check.CheckError, match="python -m tsrobust.book build"):
        browser_check.check_book(tmp_path / "html", tmp_path / "shots", pages=[])
    assert not (tmp_path / "shots").exists()
