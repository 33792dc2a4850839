# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.wedge-installed

.PHONY: venv demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	@# Use a torch that is already importable; otherwise pin the CPU wheel so that pip
	@# does not pull several GB of CUDA packages for a bare `torch` requirement.
	@$(VPY) -c "import torch" 2>/dev/null || $(VPY) -m pip install -q "torch==2.13.0"
	$(VPY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wedge demo -o demo-out

test: $(STAMP)
	$(VPY) -m ruff check src tests benchmarks validation
	$(VPY) -m pytest -q

test-slow: $(STAMP)
	$(VPY) -m pytest -q -m slow

lint: $(STAMP)
	$(VPY) -m ruff check src tests benchmarks validation
	$(VPY) -m ruff format --check src tests benchmarks validation

bench: $(STAMP)
	$(VPY) benchmarks/bench_projector.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
