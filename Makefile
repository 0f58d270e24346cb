# onbehalf: `make run` starts the whole system, `make test` runs lint, types and the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit lint typecheck pytest policy-test fuzz bench clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# one resolve for everything: oso pins cffi~=1.15 and a later separate install could break it
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/onbehalf run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy libs services onbehalf policies tests bench devtools

policy-test: $(STAMP)
	$(BIN)/onbehalf policy test

# The fast layer: pure code in process (contracts, pricing, the decision tables), in seconds.
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit policies/tests

pytest: $(STAMP)
	# the browser tests (tests/console) drive Debian's chromium
	bash scripts/ensure-chromium.sh
	# the system's tests; `make unit` runs tests/unit and the decision tables (once). Two test
	# processes per two cores (pytest-xdist), a file at a time so a file's fixtures stay whole:
	# the tests mostly wait on processes starting, and each process has its own stack. Files go
	# out in collection order, the longest first (tests/conftest.py), not by number of tests.
	$(BIN)/python -m pytest tests --ignore=tests/unit -n auto --maxprocesses 4 --dist loadfile \
		--no-loadscope-reorder

# The decision tables run once, inside pytest (policies/tests); `make policy-test` runs them
# through the operator's CLI.
test: lint typecheck unit pytest

# A long Schemathesis run against every service (≈ 8 minutes on two cores): what `make test`'s
# six seconds per service and caller do not reach, e.g. a status the OpenAPI leaves out. Nightly.
fuzz: $(STAMP)
	ONBEHALF_FUZZ_EXAMPLES=60 ONBEHALF_FUZZ_SECONDS=25 $(BIN)/python -m pytest -q \
		tests/contract/test_schemathesis.py

bench: $(STAMP)
	$(BIN)/python bench/acting_overhead.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
