# `make demo` and `make test` create and reuse .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-mnist bench-minigrid mkl-on-amd clean

# The wheel ships rim_core only; the .pth file puts the clone's root on the venv's path, so
# that `experiments` imports and `python main.py` runs from any folder (see docs/layout.md).
$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[experiments,test]'
	$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "rim-experiments.pth").write_text(str(pathlib.Path.cwd()) + "\n")'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/minigrid/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) scripts/benchmarks/benchmark.py

clean:
	rm -rf $(VENV) build *.egg-info

bench-mnist: $(STAMP)
	$(PY) scripts/benchmarks/benchmark_mnist.py --ddp

bench-minigrid: $(STAMP)
	$(PY) scripts/benchmarks/benchmark_minigrid.py

# Opt-in, for AMD CPUs: see scripts/contrib/mkl_on_amd.c and docs/performance.md.
mkl-on-amd: build/libmkl_on_amd.so

build/libmkl_on_amd.so: scripts/contrib/mkl_on_amd.c
	mkdir -p build
	$(CC) -shared -fPIC -O2 -o $@ $<
