# Two entry points on a fresh clone (only Python >= 3.10 and pip needed):
#   make demo   set up .venv, then run the main job
#   make test   set up .venv, then run the default test suite (slow tests left out)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-sinusoid test test-slow bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	# torch is pinned here: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

demo: setup
	$(PY) experiments/maml_rl.py --env metarl/Navigation2D-v0 --learner maml-trpo \
		--iterations 25 --tasks-per-batch 10 --fisher-every 4 --eval-tasks 20 --threads 2 \
		--out runs/demo --overwrite

demo-sinusoid: setup
	$(PY) experiments/sinusoid.py --learner maml --shots 10 --iterations 5000 \
		--eval-tasks 200 --out runs/demo-sinusoid --overwrite

test: setup
	$(PY) -m ruff check metarl envs experiments tests benchmarks
	$(PY) -m ruff format --check metarl envs experiments tests benchmarks
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) benchmarks/adapt.py

lint: setup
	$(PY) -m ruff check metarl envs experiments tests benchmarks
	$(PY) -m ruff format --check metarl envs experiments tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
