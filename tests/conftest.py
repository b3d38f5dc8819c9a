import os

# Tests must never reach a model hub; the offline defaults load packaged files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One thread per test process: pytest-xdist already runs one process per core, and two torch threads per
# process on a 2-core machine stall each other (a 135M training step: 3 s with one thread, 50 s with two).
os.environ.setdefault("OMP_NUM_THREADS", "1")
