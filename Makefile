# The README's quick start: `make run` (set up everything, then run) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run demo test lint typecheck unit bench-quality bench-speed bench-server clean

setup:
	@./scripts/setup.sh

# The server on the embedded default (SQLite + a local folder + in-process workers), on
# http://127.0.0.1:8000 (API docs at /docs). CLEANCUT_SERVER__* variables configure it.
run: setup
	$(BIN)/cleancut serve

demo: setup
	@mkdir -p out
	$(BIN)/cleancut remove examples/astronaut.jpg -o out/astronaut.png
	@echo "==> wrote out/astronaut.png"

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/python -m pytest

test: setup lint typecheck unit

bench-quality:
	@CLEANCUT_EXTRAS=dev,bench ./scripts/setup.sh
	$(BIN)/python bench/quality.py

# rembg from the bench extra; IMG.LY is installed from npm into ~/.cache/cleancut-bench.
bench-speed:
	@CLEANCUT_EXTRAS=dev,bench ./scripts/setup.sh
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/speed.py --encoders --inputs "12 MP"

bench-server: setup
	$(BIN)/python bench/server_load.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache test-artifacts
