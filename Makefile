# Every target sets itself up from nothing (.venv) and is fast when already set up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export EXP_DAGSTER_HOME ?= $(CURDIR)/.exp_dagster_home
export DAGSTER_HOME ?= $(EXP_DAGSTER_HOME)/dagster

.PHONY: demo test ui lint format validate lock clean demo-clean browser bench

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" -c requirements.lock
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## demo: simulate a ranker A/B test, materialise every partition in process, print the decision
demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/exp-dagster demo

## browser: Debian's headless Chromium for the browser tests; where it cannot be installed, the
## browser tests skip with that reason
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests …"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	      >/dev/null 2>&1 || echo "chromium could not be installed: the browser tests will skip"; \
	  else \
	    echo "chromium is missing and this user cannot install it: the browser tests will skip"; \
	  fi; }

## test: lint, the definitions check and the whole test suite
test: $(STAMP) $(DAGSTER_HOME)/dagster.yaml browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/dg check defs
	$(BIN)/pytest

## bench: the scale benchmark (by hand, not part of make test; docs/scale.md):
## exp_dagster against a bare DuckDB scan, tea-tasting and pandas on the same cached data
## (the full run: make bench BENCH_UNITS=10000000 BENCH_REPEAT=1 BENCH_CONTENDERS=scan,exp_dagster,tea_tasting
## BENCH_ADD_DAY=--no-add-day; pandas needs more than 16 GB at 10M units)
BENCH_UNITS ?= 1000000
BENCH_REPEAT ?= 3
BENCH_CONTENDERS ?= scan,exp_dagster,exp_dagster_direct,tea_tasting,pandas
BENCH_ADD_DAY ?=
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --units $(BENCH_UNITS) --repeat $(BENCH_REPEAT) \
	    --contenders $(BENCH_CONTENDERS) $(BENCH_ADD_DAY) --json benchmarks/.data/last_run.json

## ui: the Dagster UI and daemon on http://127.0.0.1:3000 over the demo's home (UI_PORT=… for another);
## Ctrl-C stops it, even when started in the background by a script (exp_dagster/ui.py)
UI_PORT ?= 3000
ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m exp_dagster.ui -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg check defs

## lock: re-pin requirements.lock to what the current .venv resolved
lock: $(STAMP)
	{ echo "# The environment make test and make demo were verified with (pip install -c requirements.lock)."; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v "^exp.dagster"; } > requirements.lock

demo-clean:
	rm -rf $(EXP_DAGSTER_HOME)

clean: demo-clean
	rm -rf $(VENV) .pytest_cache .ruff_cache benchmarks/.venv-tea
