"""The package's layers: which subpackage may import which, and what ``import metarl.rl`` costs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# importer prefix -> prefixes it must never import (directly, or inside a function)
FORBIDDEN = {
    "metarl.core": ("metarl.rl", "metarl.supervised", "metarl.imitation", "metarl.envs"),
    "metarl.nn": ("metarl.rl", "metarl.supervised", "metarl.imitation", "metarl.envs"),
    "metarl.config": ("metarl.rl", "metarl.supervised", "metarl.imitation", "metarl.envs"),
    "metarl.rl": ("metarl.supervised",),
    "metarl.supervised": ("metarl.rl", "metarl.imitation", "metarl.envs"),
    "metarl.envs": ("metarl.rl", "metarl.supervised", "metarl.imitation", "metarl.core"),
}


def _modules() -> dict[str, Path]:
    """Every module of the installed package by dotted name (``envs/`` is ``metarl.envs``)."""
    found = {}
    for folder, package in ((ROOT / "metarl", "metarl"), (ROOT / "envs", "metarl.envs")):
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports, relative imports resolved."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _violations(modules: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in modules.items():
        for importer, banned in FORBIDDEN.items():
            if name == importer or name.startswith(importer + "."):
                for imported in _imports(name, path):
                    if any(imported == b or imported.startswith(b + ".") for b in banned):
                        bad.append(f"{name} imports {imported}")
    return sorted(bad)


def test_no_layer_imports_what_it_must_not():
    modules = _modules()
    assert {"metarl.core.learners", "metarl.rl.policies", "metarl.envs.batched"} <= set(modules)
    assert _violations(modules) == []


def test_the_check_catches_a_forbidden_import(tmp_path):
    """The walk sees function-level and relative imports (a test that cannot fail is none)."""
    (tmp_path / "sampler.py").write_text("def f():\n    from ..supervised import models\n")
    (tmp_path / "learners.py").write_text("import metarl.envs.batched\n")
    fake = {"metarl.rl.sampler": tmp_path / "sampler.py",
            "metarl.core.learners": tmp_path / "learners.py"}  # fmt: skip
    assert _violations(fake) == [
        "metarl.core.learners imports metarl.envs.batched",
        "metarl.rl.sampler imports metarl.supervised",
        "metarl.rl.sampler imports metarl.supervised.models",
    ]


@pytest.mark.parametrize(
    "code",
    [
        "import metarl.rl",
        "from metarl.rl import MultiTaskSampler, CategoricalMLPPolicy\n"
        "s = MultiTaskSampler('metarl/BernoulliBandit-v0', episodes_per_task=2, horizon=5)\n"
        "p = CategoricalMLPPolicy.for_env('metarl/BernoulliBandit-v0')\n"
        "s.sample(s.sample_tasks(2), p)",
    ],
    ids=["import", "bandit-sampler"],
)
def test_meta_rl_without_mujoco_never_imports_it(code):
    probe = (
        f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'mujoco'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_mujoco_sampler_does_import_it():
    """The probe above would pass if nothing were ever imported: check it can see MuJoCo."""
    probe = ("import sys\nfrom metarl.rl import MultiTaskSampler\n"
             "MultiTaskSampler('metarl/HalfCheetahVel-v0', episodes_per_task=1, horizon=2)\n"
             "print('mujoco' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
