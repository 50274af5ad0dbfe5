# Two commands do all the set-up on a fresh machine, each installing what it needs:
#   make serve   build the default CLIP checkpoint into a bundle and serve it on 127.0.0.1:8000
#   make test    run the test suite
# MODEL may be a hub id or a local folder written by save_pretrained (offline machines:
# `make serve MODEL=./my-clip`, or `make serve MODEL=random` for a random-weight ViT-B/32).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= openai/clip-vit-base-patch32
BUNDLE ?=
PRECISION ?= int8
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: serve test fuzz install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# The real CLIP BPE vocabulary ships inside the open-clip-torch wheel. Installing that wheel
# would pull torchvision and a CUDA build of torch, so it is only downloaded (no deps) to
# where mmship.testing.tokenizers looks for it: $(VENV)/share/mmship/wheels. `make serve
# MODEL=random` uses it for the stand-in model's tokenizer when the download worked.
OPEN_CLIP ?= open-clip-torch==3.3.0

# Installs are stamped so a second run is instant; pyproject changes reinstall.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	-$(BIN)/python -m pip download --quiet --no-deps --dest $(VENV)/share/mmship/wheels "$(OPEN_CLIP)"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip download --quiet --no-deps --dest $(VENV)/share/mmship/wheels "$(OPEN_CLIP)"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

serve: $(VENV)/.installed
	$(BIN)/python scripts/serve_default.py --model "$(MODEL)" --bundle "$(BUNDLE)" \
		--precision "$(PRECISION)" --host "$(HOST)" --port "$(PORT)"

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fuzz suite runs in `make test` with a fixed, deterministic budget; this runs it with
# ten times the examples, drawn at random (a hunt by hand, minutes).
fuzz: $(VENV)/.installed-dev
	MMSHIP_FUZZ_PROFILE=deep $(BIN)/python -m pytest -m fuzz tests/fuzz $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) bundles build dist src/*.egg-info
