"""The `technic` command line: argument handling that needs no running cluster."""

from __future__ import annotations

import pytest

from gateway import cli


def test_train_takes_its_own_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda argv: seen.append(list(argv)) or 0)
    assert cli.main(["train", "--trees", "30", "--out", "models"]) == 0
    assert seen[0][1:] == ["-m", "services.compute.train", "--trees", "30", "--out", "models"]


def test_train_help_is_the_trainers(capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--help"]) == 0
    assert "--trees" in capfd.readouterr().out


def test_top_level_help_lists_train(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "train" in capsys.readouterr().out
