# neurohw developer setup: `make demo` and `make test` from a fresh clone.
# Everything is installed into .venv by this file; nothing is installed by hand.
#
# PyTorch is pinned to a build that lies on this machine's disk (see docs/install.md):
# torch 2.14.1 + torchvision 0.29.1 let Norse install normally and lava-dl's netx import.
# Lava 0.10.0 declares Python < 3.11: it is installed with --no-deps
# --ignore-requires-python plus its own pins; neurohw patches one dataclass at import.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.stamp-deps
CONSTRAINTS := requirements/constraints.txt

TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: all venv demo test test-slow test-all clean distclean

all: venv

venv: $(STAMP) $(VENV)/.stamp-pkg

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Third-party dependencies: re-installed only when these files change.
$(STAMP): $(VENV)/bin/python requirements/base.txt requirements/test.txt $(CONSTRAINTS) Makefile
	$(PIP) install -c $(CONSTRAINTS) -r requirements/base.txt
	$(PIP) install --no-deps --ignore-requires-python lava-nc==0.10.0
	$(PIP) install -c $(CONSTRAINTS) $(TORCH_PINS)
	$(PIP) install -c $(CONSTRAINTS) snntorch norse nirtorch ninja "opencv-python-headless<4.11"
	$(PIP) install --no-deps --ignore-requires-python lava-dl==0.6.0
	$(PIP) install --no-deps sinabs==3.1.3 pbr
	$(PIP) install --no-deps neurobench==2.3.0
	$(PIP) install -c $(CONSTRAINTS) -r requirements/test.txt
	touch $@

# neurohw itself, editable: re-run only when pyproject.toml changes.
$(VENV)/.stamp-pkg: $(STAMP) pyproject.toml
	$(PIP) install --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

demo: venv
	$(PY) examples/demo.py

# The bounded test set (slow tests excluded): keeps under ~10 minutes on 2 cores.
test: venv
	$(PY) -m pytest -q -m "not slow" tests

test-slow: venv
	$(PY) -m pytest -q -m slow tests

test-all: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf build *.egg-info .pytest_cache out

distclean: clean
	rm -rf $(VENV)
