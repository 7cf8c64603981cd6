"""envs/ installs as metarl.envs, from an editable install and from a wheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import metarl, metarl.envs, metarl.core; print(metarl.envs.__file__)"


def _probe(env: dict[str, str], cwd: Path) -> Path:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def test_editable_install_imports_metarl_envs(tmp_path):
    path = _probe(dict(os.environ), cwd=tmp_path)
    assert path == ROOT / "envs" / "__init__.py"


def test_no_top_level_envs_module_is_installed(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('envs'))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "None"


def test_wheel_install_imports_metarl_envs(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("metarl-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    assert _probe(env, cwd=tmp_path) == site / "metarl" / "envs" / "__init__.py"


# distribution name -> the import that uses it (tensorboard is torch's SummaryWriter backend)
IMPORT_NAMES = {
    "pillow": "PIL",
    "tensorboard": "torch.utils.tensorboard",
    "stable-baselines3": "stable_baselines3",
}


def test_every_runtime_dependency_is_imported_by_the_library():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in deps]
    sources = "\n".join(
        p.read_text() for folder in ("metarl", "envs") for p in (ROOT / folder).rglob("*.py")
    )
    unused = [
        n for n in names
        if not re.search(rf"^\s*(from|import) {re.escape(IMPORT_NAMES.get(n, n))}\b", sources,
                         re.MULTILINE)
    ]  # fmt: skip
    assert unused == [], f"declared but never imported by metarl: {unused}"
