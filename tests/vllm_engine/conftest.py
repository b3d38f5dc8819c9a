"""These tests run where vLLM is installed (`make test-vllm` builds .venv-vllm with its CPU build); elsewhere,
as in `make test`, they are not collected at all. (The folder is not named `vllm`: with tests/ on sys.path,
find_spec("vllm") would find it as a namespace package where vLLM is not installed.)"""

import importlib.util
import os

collect_ignore = [] if importlib.util.find_spec("vllm") else ["test_vllm_engine.py"]

# vLLM's engine core in this process (no spawned workers to import the tests again), and its CPU threads left
# unpinned: the machine is shared with other jobs.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
