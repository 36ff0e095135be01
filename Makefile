# `make demo` and `make test` each create .venv when it is missing and install
# the project into it, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the TIDE oracle without its opencv-python (pyproject.toml says why)
	$(BIN)/python -m pip install --quiet --no-deps tidecv==1.0.1
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/detladder demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python benchmarks/eval_speed.py

clean-venv:
	rm -rf $(VENV)
