"""Settings parsing (tyro) and the declared checks of metarl.utils.cli."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import pytest

from metarl.utils.cli import (
    Check,
    Discount,
    NonEmpty,
    NonNegative,
    Positive,
    Probability,
    check_settings,
    parse_settings,
)


@dataclass
class _Settings:
    name: str = "a"
    lr: float = 0.1
    flag: bool = False
    size: int | None = None
    pair: tuple[float, ...] = (1.0, 2.0)


def test_parse_settings():
    s = parse_settings(_Settings, ["--lr", "0.5", "--flag", "--size", "3", "--pair", "0.1", "0.2"])
    assert s == _Settings("a", 0.5, True, 3, (0.1, 0.2))
    assert parse_settings(_Settings, ["--size", "none"]).size is None
    with pytest.raises(SystemExit):
        parse_settings(_Settings, ["--lr", "fast"])


@dataclass
class _Run:
    """Settings of a test run."""

    tasks_per_batch: Annotated[int, Positive] = 20  # tasks in each meta-batch
    iterations: Annotated[int, NonNegative] = 200
    hidden: Annotated[tuple[int, ...], Positive, NonEmpty] = (100, 100)  # hidden layer widths
    dropout: Annotated[float, Probability] = 0.0
    gamma: Annotated[float, Discount] = 0.99
    inner_batch: Annotated[int, NonNegative] | None = None  # None: all examples
    ways: Annotated[int, Check(lambda n: n >= 2, "must be >= 2")] = 5
    activation: Literal["relu", "tanh"] = "relu"
    out: str | None = None
    rescale_actions: bool = True

    def validate(self) -> None:
        if self.iterations == 0 and self.activation == "tanh":
            raise ValueError("--activation tanh needs --iterations > 0")


@dataclass
class _Required:
    run: str  # the run folder
    seed: int = 0


def test_flag_forms_round_trip():
    s = parse_settings(
        _Run,
        "--tasks-per-batch 4 --hidden 64 32 --inner-batch 0 --activation tanh "
        "--out runs/x --no-rescale-actions".split(),
    )
    assert s == _Run(
        tasks_per_batch=4,
        hidden=(64, 32),
        inner_batch=0,
        activation="tanh",
        out="runs/x",
        rescale_actions=False,
    )
    assert parse_settings(_Run, []) == _Run()
    assert parse_settings(_Run, ["--tasks_per_batch", "3"]).tasks_per_batch == 3
    assert parse_settings(_Run, ["--inner-batch", "None", "--out", "None"]).out is None
    assert parse_settings(_Run, ["--out", "none"]).out is None
    assert parse_settings(_Settings, ["--size", "None"]).size is None
    assert parse_settings(_Required, ["--run", "r"]) == _Required("r", 0)


@pytest.mark.parametrize(
    "argv",
    [
        ["--activation", "sigmoid"],  # not one of the Literal's choices
        ["--iterations", "many"],
        ["--bogus", "1"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags_exit_2(argv):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(_Run, argv)
    assert exit_info.value.code == 2


def test_missing_required_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(_Required, [])
    assert exit_info.value.code == 2
    assert "--run" in capsys.readouterr().err


def test_help_shows_comments_defaults_and_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(_Run, ["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "Settings of a test run." in text
    assert "--tasks-per-batch" in text
    assert "tasks in each meta-batch" in text
    assert "(default: 20)" in text
    assert "None: all examples" in text
    assert "{relu,tanh}" in text
    assert "--rescale-actions" in text and "--no-rescale-actions" in text

    with pytest.raises(SystemExit):
        parse_settings(_Required, ["--help"], description="Retest a run.")
    text = capsys.readouterr().out
    assert "Retest a run." in text and "the run folder" in text and "(required)" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tasks-per-batch", "0"], "--tasks-per-batch must be > 0, got 0"),
        (["--iterations", "-3"], "--iterations must be >= 0, got -3"),
        (["--hidden", "64", "0"], "--hidden must be > 0, got 0 (in (64, 0))"),
        (["--hidden"], "--hidden must have at least one value, got ()"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1], got 1.5"),
        (["--gamma", "0"], "--gamma must be in (0, 1], got 0.0"),
        (["--inner-batch", "-1"], "--inner-batch must be >= 0, got -1"),
        (["--ways", "1"], "--ways must be >= 2, got 1"),
    ],
)
def test_constraints_exit_2_naming_flag_and_value(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(_Run, argv)
    assert exit_info.value.code == 2
    assert f"error: {message}" in capsys.readouterr().err


def test_validate_errors_exit_2(capsys):
    assert parse_settings(_Run, ["--iterations", "0"]).iterations == 0
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(_Run, ["--iterations", "0", "--activation", "tanh"])
    assert exit_info.value.code == 2
    assert "error: --activation tanh needs --iterations > 0" in capsys.readouterr().err


def test_check_settings_without_cli():
    check_settings(_Run())
    with pytest.raises(ValueError, match=r"--gamma must be in \(0, 1\], got 1\.5"):
        check_settings(_Run(gamma=1.5))
    with pytest.raises(ValueError, match="tasks-per-batch"):
        check_settings(_Run(tasks_per_batch=-2))
    with pytest.raises(ValueError, match="needs --iterations"):
        check_settings(_Run(iterations=0, activation="tanh"))
    with pytest.raises(TypeError):
        check_settings(_Run)


@dataclass
class _Inner:
    lr: Annotated[float, Positive] = 0.1


@dataclass
class _Outer:
    optim: _Inner = field(default_factory=_Inner)
    widths: tuple[Annotated[int, Positive], ...] = (8,)


def test_nested_settings_and_annotated_items(capsys):
    assert parse_settings(_Outer, ["--optim.lr", "0.5"]).optim.lr == 0.5
    with pytest.raises(ValueError, match=r"--optim\.lr must be > 0, got -1"):
        check_settings(_Outer(optim=_Inner(lr=-1)))
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(_Outer, ["--widths", "4", "-4"])
    assert exit_info.value.code == 2
    assert "--widths must be > 0, got -4" in capsys.readouterr().err
