# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint venv clean-demo

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Optional extras (ONNX export check, DenseCRF): the tests use them, the demo does not.
$(VENV)/.extras: $(VENV)/.installed requirements-extra.txt
	$(PY) -m pip install --quiet -r requirements-extra.txt
	touch $@

venv: $(VENV)/.installed

# Offline end to end: synthetic KITTI-layout data + a random-weight VGG16, train, evaluate, overlays.
demo: venv
	$(PY) main.py demo

# The whole suite: Udacity interface checks, unit and integration tests, lint.
test: venv $(VENV)/.extras
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean-demo:
	rm -rf data/synthetic data/vgg_random
