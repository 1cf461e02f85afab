# Pantau: the two commands of the quick start, and the pieces they are made of.
#   make demo   the whole system on this machine (installs what is missing), live summary
#   make test   lint (the layer rule included), type check and the whole test suite against real servers

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench-ingest bench-simulate bench-processing bench-detection bench-api bench-soak bench-chaos stack-up stack-down clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Pantau needs Python 3.11 or newer (found $$($(PYTHON) --version)); set PYTHON=..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ echo "could not create $(VENV): on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/pantau demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

# Ingest benchmark: broker and database limits and Pantau end to end, measured in one run
# (about 2 minutes; BENCH_ARGS=--quick for a smoke run). Writes bench/results/ingest-*.json.
bench-ingest: $(STAMP)
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)

# Processing benchmark: the pure pipeline per core, against the plain-Python references
# (about a minute; BENCH_ARGS=--quick for a smoke run). Writes bench/results/processing-*.json.
bench-processing: $(STAMP)
	$(BIN)/python -m bench.processing $(BENCH_ARGS)

# Detection quality: the detectors on a week of simulated traffic with labelled faults; recall
# and precision per fault kind (about a minute).
bench-detection: $(STAMP)
	$(BIN)/python -m bench.detection $(BENCH_ARGS)

# Simulator benchmark: readings/s generated (no broker), arrays and JSON measured apart
# (about 20 s; BENCH_ARGS="--days 3 --sensors 10000" for a quick run).
bench-simulate: $(STAMP)
	$(BIN)/python -m bench.simulate $(BENCH_ARGS)

# API benchmark: p50/p99 of the dashboards' typical requests at 200 req/s (target p99 <= 50 ms)
# on 1,000 bins x 90 days (about 3-4 minutes, mostly loading the data; BENCH_ARGS=--quick for
# a smoke run). Writes bench/results/api-*.json.
bench-api: $(STAMP)
	$(BIN)/python -m bench.api $(BENCH_ARGS)

# Soak drill: a scaled Jepara fleet (10,000 devices) at half the capacity measured first, for
# an hour; worker RSS and lag sampled every 10 s; PASS when nothing is lost and RSS never rises
# 10 % above its post-warm-up value (about 62 minutes and 10 GB of database;
# BENCH_ARGS="--minutes 5" for a short run). Writes bench/results/soak-*.json.
bench-soak: $(STAMP)
	$(BIN)/python -m bench.soak $(BENCH_ARGS)

# Chaos drill: 1,000,000 readings in 100-reading gateway messages while the ingest worker is
# SIGKILLed every 5 s, the broker restarted once and the database once; PASS when raw and every
# rollup width hold each reading exactly once (about a minute; BENCH_ARGS="--readings 50000"
# for a short run). Writes bench/results/chaos-*.json.
bench-chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(BENCH_ARGS)

stack-up: $(STAMP)
	$(BIN)/pantau stack up

stack-down: $(STAMP)
	$(BIN)/pantau stack down

clean: stack-down
	rm -rf .pantau
