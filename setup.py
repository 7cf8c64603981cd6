"""Package discovery: the top-level ``envs/`` folder installs as ``metarl.envs``.

A distribution named ``envs`` already exists on the package index, so the folder must not
install as a top-level module; everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup

metarl_packages = find_packages(include=["metarl", "metarl.*"])
env_packages = ["metarl.envs"] + [f"metarl.envs.{name}" for name in find_packages("envs")]

setup(
    packages=metarl_packages + env_packages,
    package_dir={"metarl.envs": "envs"},
)
