"""The last line of defence in `easy-oww`'s entry point: an unexpected exception (a bug)
prints one line and exits 1, or its traceback when asked."""

from __future__ import annotations

import signal

import pytest

from easy_oww.cli import main
from easy_oww.datasets.manager import DatasetManager


@pytest.fixture(autouse=True)
def _keep_sigterm():
    # main() installs its SIGTERM handler in this (pytest's) process: put the old one back
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def _broken_status(self, *args, **kwargs):
    raise ZeroDivisionError("division by zero")  # stands for any bug deep inside a command


def test_a_bug_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EASY_OWW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("EASY_OWW_TRACEBACK", raising=False)
    monkeypatch.setattr(DatasetManager, "status", _broken_status)
    with pytest.raises(SystemExit) as exited:
        main(["download", "--status", "--workspace", str(tmp_path / "ws")])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: unexpected ZeroDivisionError: division by zero. This is a bug")
    assert "EASY_OWW_TRACEBACK=1" in err and len(err.strip().splitlines()) == 1


def test_the_traceback_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("EASY_OWW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EASY_OWW_TRACEBACK", "1")
    monkeypatch.setattr(DatasetManager, "status", _broken_status)
    with pytest.raises(ZeroDivisionError):
        main(["download", "--status", "--workspace", str(tmp_path / "ws")])
