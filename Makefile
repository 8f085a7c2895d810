# `make demo` and `make test` create and reuse .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-mnist bench-minigrid mkl-on-amd clean

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[experiments,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/minigrid/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) build *.egg-info

bench-mnist: $(STAMP)
	$(PY) scripts/benchmark_mnist.py --ddp

bench-minigrid: $(STAMP)
	$(PY) scripts/benchmark_minigrid.py

# Opt-in, for AMD CPUs: see scripts/mkl_on_amd.c and the README's Speed section.
mkl-on-amd: build/libmkl_on_amd.so

build/libmkl_on_amd.so: scripts/mkl_on_amd.c
	mkdir -p build
	$(CC) -shared -fPIC -O2 -o $@ $<
