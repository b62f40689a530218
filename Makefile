# make data   : fill data/ (MNIST, Fashion-MNIST; md5-verified): download, or MIRROR=dir for an offline mirror
# make repro  : create the environment (from requirements.lock), fill data/, run the pipeline (dvc repro)
# make test   : create the environment if needed and run the test suite (everything: what CI runs)
# make test-fast : the fast tier (unit tests of losses, models, metrics, configs, trainers; no notebooks, dvc,
#                  browser or long subprocesses: the tests not marked slow), for the edit-test loop
# make profile PROFILE=paper|default|quick : switch params.yaml to another profile
# make browser : install headless Chromium (Debian, as root) for the report's browser test
# make gpu-check OUT=dir : the CUDA tests, the stack benchmark and the paper profile's Table 2 through the stack (GPU)
# make readme-findings: the findings summary into README.md and the whole table into docs/findings.md (from outputs/findings/findings.md)
# make readme-figures : copy the figures README and docs/ show from outputs/ (after dvc repro) into docs/figures/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.sivae-installed
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MPLBACKEND ?= Agg

.PHONY: env data repro test test-fast profile lock bench gpu-check browser readme-findings readme-figures clean-outputs

env: $(STAMP) $(LAB_SETTINGS)

# JupyterLab opens notebooks/*.py as notebooks (Jupytext's default viewer for Python files): the environment's
# settings overrides, from jupyter/overrides.json (`jupyter lab --LabApp.app_settings_dir=jupyter` does the same)
$(LAB_SETTINGS): jupyter/overrides.json | $(STAMP)
	mkdir -p $(dir $@) && cp $< $@

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --no-cache-dir -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --no-cache-dir --no-deps -e .
	$(VENV)/bin/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

data: env
	python -m sivae.images.data fetch $(if $(MIRROR),--mirror $(MIRROR))

repro: env data
	dvc repro

test: env
	python -m pytest -q $(PYTEST_ARGS)

test-fast: env
	python -m pytest -q -m "not slow" $(PYTEST_ARGS)

profile: env
	python -m sivae.profiles $(PROFILE)

# Re-solve the lock file from requirements.in (needs pip-tools).
lock: env
	python -m pip install --quiet pip-tools
	pip-compile --quiet --no-header --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock requirements.in

browser:
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

gpu-check: env
	python benchmarks/gpu_check.py $(or $(OUT),outputs/gpu_check) $(GPU_CHECK_ARGS)

bench: env
	python benchmarks/bench_stack.py
	python benchmarks/bench_toy2d_step.py
	python benchmarks/bench_images_step.py
	python benchmarks/bench_ood_scoring.py
	python benchmarks/bench_ood_beyond.py

# docs/figures/<stage>_<name>.png <- outputs/<stage dir>/figures/<name>.png, for the figures the README shows
README_FIGURES := theory_discrete:dstar_vs_gamma:theory_dstar_vs_gamma toy2d:figure2:toy2d_figure2 \
	stability:figure3:stability_figure3 stability:figure21_collapse:stability_figure21 \
	stability:kl_fake_vs_m:stability_kl_fake_vs_m images:samples_mnist:images_samples_mnist \
	images:samples_fashionmnist:images_samples_fashionmnist \
	images:reconstructions_fashionmnist:images_reconstructions_fashionmnist \
	images:interpolation_mnist:images_interpolation_mnist \
	images:square_interpolation_mnist:images_square_interpolation_mnist \
	images:conditional_fashionmnist:images_conditional_fashionmnist ood:figure8_mnist:ood_figure8_mnist \
	images:style_growth_mnist:images_style_growth_mnist images:style_samples_mnist:images_style_samples_mnist \
	translation:translation_test:translation_grid_test translation:translation_train:translation_grid_train \
	translation:kl_codes:translation_kl_codes toy2d:budget_kl:toy2d_budget_kl toy2d:budget_jsd:toy2d_budget_jsd \
	findings:verdicts:findings_verdicts

readme-findings: env
	python -m sivae.findings.table README.md docs/findings.md outputs/findings/findings.md

readme-figures:
	@mkdir -p docs/figures
	@for f in $(README_FIGURES); do IFS=: read -r stage name dest <<< "$$f"; \
	  cp outputs/$$stage/figures/$$name.png docs/figures/$$dest.png || exit 1; done
