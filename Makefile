# make data   : fill data/ (MNIST, Fashion-MNIST; md5-verified): download, or MIRROR=dir for an offline mirror
# make repro  : create the environment (from requirements.lock), fill data/, run the pipeline (dvc repro)
# make test   : create the environment if needed and run the test suite
# make profile PROFILE=paper|default : switch params.yaml to another profile
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.sivae-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MPLBACKEND ?= Agg

.PHONY: env data repro test profile lock bench clean-outputs

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(VENV)/bin/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

data: env
	python -m sivae.data fetch $(if $(MIRROR),--mirror $(MIRROR))

repro: env data
	dvc repro

test: env
	python -m pytest -q $(PYTEST_ARGS)

profile: env
	python -m sivae.profiles $(PROFILE)

# Re-solve the lock file from requirements.in (needs pip-tools).
lock: env
	python -m pip install --quiet pip-tools
	pip-compile --quiet --no-header --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock requirements.in

bench: env
	python benchmarks/bench_toy2d_step.py
	python benchmarks/bench_images_step.py
