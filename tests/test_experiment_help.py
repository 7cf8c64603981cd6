"""Every experiment script's ``--help`` describes every one of its flags."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import load_experiment

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p.stem
    for p in (ROOT / "experiments").glob("*.py")
    if "parse_settings(" in p.read_text() and "class Settings" in p.read_text()
)


def _flag_texts(help_text: str) -> dict[str, str]:
    """``--flag`` -> the words tyro prints for it, box drawing, metavars and default removed."""
    text = re.sub(r"[│╭╮╰╯─]", " ", help_text)
    texts = {}
    for match in re.finditer(r"(?m)^\s*(--[a-z0-9-]+)(.*?)(?=^\s*--[a-z0-9-]+|\Z)", text, re.S):
        flag, body = match.group(1), match.group(2)
        body = re.sub(r"\(default: [^)]*\)", "", body)
        body = re.sub(r"^(, --no-[a-z0-9-]+)?\s*(\{[^}]*\}\|?)?([A-Z]+( [A-Z]+)*( \[[A-Z .]+\])?)?",
                      "", body.strip())  # fmt: skip
        texts[flag] = " ".join(body.split())
    return texts


def test_every_script_with_settings_is_checked():
    assert {"maml_rl", "sinusoid", "omniglot", "bandits"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_describes_every_flag(name):
    settings = load_experiment(name).Settings
    env = dict(os.environ, COLUMNS="200")
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--help"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    texts = _flag_texts(out.stdout)
    flags = ["--" + f.name.replace("_", "-") for f in dataclasses.fields(settings)]
    missing = [flag for flag in flags if flag not in texts]
    undescribed = [flag for flag in flags if flag in texts and len(texts[flag]) < 3]
    assert missing == [] and undescribed == [], (missing, undescribed, out.stdout)


def test_the_check_sees_a_flag_without_words():
    shown = "│ --seed INT     the seed (default: 0) │\n│ --bare INT     (default: 1)   │\n"
    assert _flag_texts(shown) == {"--seed": "the seed", "--bare": ""}
