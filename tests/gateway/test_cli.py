"""The `technic` command line: argument handling that needs no running cluster."""

from __future__ import annotations

import pytest

from gateway import cli
from services.compute import train


def test_train_takes_its_own_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(train, "main", lambda argv: seen.append(list(argv)) or 0)
    assert cli.main(["train", "--trees", "30", "--out", "models"]) == 0
    assert seen == [["--trees", "30", "--out", "models"]]


def test_train_help_is_the_trainers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--help"])
    assert exit_info.value.code == 0
    assert "--trees" in capsys.readouterr().out


def test_top_level_help_lists_train(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "train" in capsys.readouterr().out
