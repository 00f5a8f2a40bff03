# Two commands set everything up on a fresh machine:
#   make demo   virtual environment + install + synthetic data + train + evaluate
#   make test   same environment, runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: install demo test clean

$(BIN)/comemory: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test]"
	@touch $@

install: $(BIN)/comemory

demo: install
	$(BIN)/comemory demo --out runs/demo

test: install
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) runs
