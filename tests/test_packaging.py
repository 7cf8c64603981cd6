"""envs/ installs as metarl.envs, from an editable install and from a wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
