# bmclip: `make demo` trains a tiny CLIP on synthetic biomedical figures; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The PyTorch build to install; pick yours with `bmclip env-check` (e.g. TORCH="torch==2.7.1 torchvision==0.22.1 --index-url ...").
TORCH ?= torch==2.14.1 torchvision==0.29.1
DEMO ?= demo-run

.PHONY: venv demo test test-fast lint test-under-load lock slurm-packages clean

venv: $(BIN)/.installed

# constraints.txt holds the versions the suite passed with (PyTorch aside, which TORCH chooses); `make lock` refreshes it.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,report,dev,dicom-compressed]'
	touch $@

# The newest releases pyproject's ranges allow, in a scratch venv, written to constraints.txt; then run `make test`.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet $(TORCH)
	.venv-lock/bin/pip install --quiet -e '.[train,report,dev,dicom-compressed]'
	.venv-lock/bin/python scripts/lock.py constraints.txt
	rm -rf .venv-lock

demo: venv
	rm -rf $(DEMO)
	$(BIN)/bmclip demo-data $(DEMO)/data
	$(BIN)/bmclip train --config examples/demo.yaml
	$(BIN)/bmclip eval --model bmclip-tiny --checkpoint $(DEMO)/logs/demo --data $(DEMO)/data/heldout.csv --label-column label

test: venv slurm-packages lint
	$(BIN)/pytest -q --durations=10

# ruff (pyproject's [tool.ruff]: style, imports, likely bugs) and mypy (its [tool.mypy]: the package and scripts): part of make test.
lint: venv
	$(BIN)/ruff check biomedclip_cli tests benchmarks scripts
	$(BIN)/mypy

# Everything but the tests marked slow (real multi-process training): the loop while developing.
test-fast: venv
	$(BIN)/pytest -q -m 'not slow' --durations=10

# The whole suite three times in a row while a CPU-bound process competes for the cores: the suite must not depend on an idle machine.
test-under-load: venv slurm-packages
	$(BIN)/python -c 'while True: pass' & burner=$$!; trap 'kill $$burner' EXIT; \
	for run in 1 2 3; do echo "== run $$run of 3, under load"; $(BIN)/pytest -q --durations=10 || exit 1; done

# Debian's slurm-wlm and munge for tests/test_slurm_cluster.py (installed as root when missing; skipped otherwise).
slurm-packages:
	@.ci/install-slurm

clean:
	rm -rf $(DEMO) .pytest_cache
