# LSTMPack. The two commands: `make demo` (the main job) and `make test` (the default tests).
PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
DATA_MIRROR ?= ../shared/data
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-m slow".
PYTEST_ARGS ?=

.PHONY: demo demo-data test data lint bench install clean-venv

# The venv is rebuilt only when setup.cfg changes. torch goes in first, pinned exactly, so no
# other requirement can pull the multi-gigabyte CUDA build.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo: demo-data
	$(PY) -m compress.run --model ptbc --max-paths 3

# The demo's dataset in data/ (.ci/run fills data/ with it, as make demo does, to run the tests
# again after it).
demo-data: install
	$(PY) -m compress.datasets fetch ptb_char --mirror "$(DATA_MIRROR)" --data-dir data

# Fills data/ from DATA_MIRROR when it holds a dataset, else downloads; every file is verified
# before it is renamed into place. enwik8 has no mirror copy and is a 36 MB download: its failure
# is reported but does not fail the target.
data: install
	$(PY) -m compress.datasets fetch --mirror "$(DATA_MIRROR)" --data-dir data --optional enwik8
	$(PY) -m compress.datasets check --data-dir data

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m bench

clean-venv:
	rm -rf $(VENV)
