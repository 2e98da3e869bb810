# bmclip: `make demo` trains a tiny CLIP on synthetic biomedical figures; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The PyTorch build to install; pick yours with `bmclip env-check` (e.g. TORCH="torch==2.7.1 torchvision==0.22.1 --index-url ...").
TORCH ?= torch==2.14.1 torchvision==0.29.1
DEMO ?= demo-run

.PHONY: venv demo test test-fast slurm-packages clean

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[train,report,dev]'
	touch $@

demo: venv
	rm -rf $(DEMO)
	$(BIN)/bmclip demo-data $(DEMO)/data
	$(BIN)/bmclip train --config examples/demo.yaml
	$(BIN)/bmclip eval --model bmclip-tiny --checkpoint $(DEMO)/logs/demo --data $(DEMO)/data/heldout.csv --label-column label

test: venv slurm-packages
	$(BIN)/pytest -q --durations=10

# Everything but the tests marked slow (real multi-process training): the loop while developing.
test-fast: venv
	$(BIN)/pytest -q -m 'not slow' --durations=10

# Debian's slurm-wlm and munge for tests/test_slurm_cluster.py (installed as root when missing; skipped otherwise).
slurm-packages:
	@.ci/install-slurm

clean:
	rm -rf $(DEMO) .pytest_cache
