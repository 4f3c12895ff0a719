PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast check-benchmarks bench clean

$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps zennit
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/medlens demo --out demo-out

test: $(STAMP)
	$(PY) -m pytest -q -m "not benchmarks"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not benchmarks"

# Every benchmark's quick configuration re-run against its stored result (benchmarks/results/*-quick.json),
# one thread each; a run that does not reproduce its file fails. About 6 minutes (17 runs, a shared 2-core machine); .ci/run runs it after make test.
check-benchmarks: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m benchmarks tests/report/test_benchmark_results.py

bench: $(STAMP)
	$(PY) benchmarks/attribution.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
