# Two commands set everything up on a fresh machine:
#   make demo   virtual environment + install + synthetic data + train + evaluate
#   make test   same environment, runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
# Where torch 2.13.0 comes from: pip's configured index when empty. On Linux x86-64 the
# public index serves the CUDA build (several GB); give PyTorch's CPU wheel index here
# (TORCH_INDEX=URL, as PyTorch's install page lists it) for the CPU build, or its CUDA one.
TORCH_INDEX ?=

.PHONY: install demo test clean

$(BIN)/comemory: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) -e ".[test]"
	@touch $@

install: $(BIN)/comemory

demo: install
	$(BIN)/comemory demo --out runs/demo

test: install
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) runs
