"""Sharding engines write full adapters: under FSDP and DeepSpeed ZeRO-3 each process holds a shard of every
trained tensor, so an adapter written from the main process's own parameters would be partial or empty;
`train.sft.state` writes it from what `accelerator.get_state_dict` gathers.

What runs on a CPU-only machine, found by running it (torch 2.13, accelerate 1.15, deepspeed 0.19.8):

- FSDP: torch's FSDP (version 1) shards, runs forward and backward on CPU with gloo, and gathers a full
  state dict with `offload_to_cpu=False`. accelerate never selects it there: with `cpu=True` its state is
  MULTI_CPU, and FSDP is a mode of the GPU-like types only (accelerate/state.py); its `get_state_dict` asks
  FSDP for `offload_to_cpu=True`, which on CPU tensors crashes the process (SIGSEGV in FSDP's
  `_full_post_state_dict_hook` clone). So the test shards with torch's FSDP under torchrun and gathers
  through an object with the three members `save_adapter` uses, `get_state_dict` as accelerate's FSDP
  branch but without the offload.
- DeepSpeed ZeRO-3: with `DS_ACCELERATOR=cpu` and `Accelerator(cpu=False)`, accelerate prepares a real
  DeepSpeedEngine over gloo, and its own `get_state_dict` gathers the 16-bit weights. Its process state stays
  one process per rank there (distributed type NO: `num_processes` 1, `process_index` 0 on both), so
  DeepSpeed's batch check needs `train_batch_size` set to the world size and the test takes the main process
  from DeepSpeed's ranks; the recipe itself (`cpu=not cuda`) does not run DeepSpeed on CPU. deepspeed is not
  a dependency of auralign: the test runs where it is installed.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file

from _models_fixtures import save_tiny_qwen, write_corpus
from auralign.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "configs" / "accelerate"

# What both workers share: the tiny model with LoRA and a trained projector, every trained tensor drawn at
# random (LoRA B starts at zero, which a lost shard would not change), and the adapter it makes unsharded.
COMMON = """
import json, sys
from pathlib import Path
import torch
from auralign.models.factory import ModelConfig, build_model
from auralign.models.lora import LoraSettings, apply_lora, save_adapter as save_local
from auralign.train.sft.state import save_adapter

model_dir, out = sys.argv[1], Path(sys.argv[2])
llm = build_model(ModelConfig(backend="qwen2audio", path=model_dir), seed=0)
apply_lora(llm, LoraSettings(dropout=0.0, train_projector=True))
generator = torch.Generator().manual_seed(1)
with torch.no_grad():
    for p in llm.parameters():
        if p.requires_grad:
            p.copy_(torch.randn(p.shape, generator=generator))
full = {n: p.numel() for n, p in llm.named_parameters() if p.requires_grad}


def record(rank, llm):
    local = {n: p.numel() for n, p in llm.named_parameters() if p.requires_grad}
    (out / f"local_{rank}.json").write_text(json.dumps({"full": sum(full.values()), "local": sum(local.values())}))
"""

FSDP_WORKER = """
import functools
import torch.distributed as dist
from torch.distributed.fsdp import FullStateDictConfig, FullyShardedDataParallel as FSDP, StateDictType
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoderLayer


class GlooFsdp:
    # accelerate's FSDP get_state_dict, without the CPU offload that crashes on CPU tensors
    @property
    def is_main_process(self):
        return dist.get_rank() == 0

    def get_state_dict(self, model):
        config = FullStateDictConfig(offload_to_cpu=False, rank0_only=True)
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, config):
            return model.state_dict()

    def wait_for_everyone(self):
        dist.barrier()


dist.init_process_group("gloo")
rank = dist.get_rank()
if rank == 0:
    save_local(llm, out / "unsharded")
layers = {Qwen2DecoderLayer, Qwen2AudioEncoderLayer}  # what configs/accelerate/fsdp.yaml wraps
policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls=layers)
wrapped = FSDP(llm, use_orig_params=True, auto_wrap_policy=policy, device_id=torch.device("cpu"))
from auralign.data.manifest import load_manifest
from auralign.models.base import chat_from_sample
manifest = Path(sys.argv[3])
chat = chat_from_sample(load_manifest(manifest)[rank], manifest.parent)
wrapped(llm.collate([chat]), reduction="sum").backward()  # FSDP trains on CPU
record(rank, llm)
save_adapter(GlooFsdp(), wrapped, llm, out / "sharded")
dist.destroy_process_group()
"""

ZERO3_WORKER = """
import os
from accelerate import Accelerator
import deepspeed.comm as dist


class DeepSpeedRanks:
    # accelerate's own get_state_dict; the main process from DeepSpeed's ranks (accelerate sees one on CPU)
    def __init__(self, acc):
        self.acc = acc

    @property
    def is_main_process(self):
        return dist.get_rank() == 0

    def get_state_dict(self, model):
        return self.acc.get_state_dict(model)

    def wait_for_everyone(self):
        dist.barrier()


acc = Accelerator(cpu=False, mixed_precision="no")
config = acc.state.deepspeed_plugin.deepspeed_config
config["train_micro_batch_size_per_gpu"] = 1
config["train_batch_size"] = int(os.environ["WORLD_SIZE"])
config["zero_optimization"]["stage3_param_persistence_threshold"] = 0  # shard even the tiny tensors
optimizer = torch.optim.AdamW([p for p in llm.parameters() if p.requires_grad], lr=1e-3)
rank = int(os.environ["RANK"])
if rank == 0:
    save_local(llm, out / "unsharded")
model, optimizer = acc.prepare(llm, optimizer)
record(rank, llm)
if rank == 0:
    save_local(llm, out / "local")  # the main process's own view: what a save without gathering writes
save_adapter(DeepSpeedRanks(acc), model, llm, out / "sharded")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_workers(launcher: list[str], body: str, args: list[str], tmp_path: Path, env: dict[str, str]) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(COMMON) + textwrap.dedent(body))
    cmd = [*launcher, str(script), *args]
    base = os.environ | {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=base | env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


def assert_full_adapter(out: Path) -> None:
    """The gathered adapter is the unsharded one, tensor for tensor, while no process held all of it."""
    unsharded = load_file(out / "unsharded" / "adapter_model.safetensors")
    sharded = load_file(out / "sharded" / "adapter_model.safetensors")
    assert sharded.keys() == unsharded.keys() and any("multi_modal_projector" in k for k in sharded)
    for key, value in unsharded.items():
        assert torch.equal(sharded[key], value), key
    views = [json.loads((out / f"local_{rank}.json").read_text()) for rank in (0, 1)]
    assert all(v["local"] < v["full"] for v in views), views  # every process held a part only


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engines")
    return {"model": save_tiny_qwen(root / "tiny"), "ac": write_corpus(root / "ac", n=2)}


def test_fsdp_shards_on_cpu_and_the_adapter_is_gathered_whole(tiny, tmp_path) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    torchrun += ["--master_port", str(free_port())]
    run_workers(torchrun, FSDP_WORKER, [str(tiny["model"]), str(tmp_path), str(tiny["ac"])], tmp_path, {})
    assert_full_adapter(tmp_path)


def test_zero3_on_cpu_writes_the_full_adapter_where_the_local_view_is_empty(tiny, tmp_path) -> None:
    pytest.importorskip("deepspeed")
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    launch += ["--config_file", str(ACCELERATE / "deepspeed-zero3.yaml"), "--mixed_precision", "no"]
    launch += ["--main_process_port", str(free_port())]
    run_workers(
        launch, ZERO3_WORKER, [str(tiny["model"]), str(tmp_path)], tmp_path, {"DS_ACCELERATOR": "cpu"}
    )
    assert_full_adapter(tmp_path)
    local = load_file(tmp_path / "local" / "adapter_model.safetensors")
    assert all(v.numel() == 0 for k, v in local.items() if "lora_" in k)  # without gathering: empty


def test_deepspeed_takes_batch_and_clipping_from_the_training_config(tmp_path) -> None:
    from accelerate.utils import DistributedType

    from auralign.train.sft.config import TrainConfig
    from auralign.train.sft.recipe import configure_deepspeed

    stages = [{"name": "s", "data": [{"manifest": "m"}]}]
    body = {"output_dir": str(tmp_path), "stages": stages, "batch_size": 2, "optim": {"max_grad_norm": 0.5}}
    cfg = TrainConfig.model_validate(body)
    shipped = yaml.safe_load((ACCELERATE / "deepspeed-zero3.yaml").read_text())["deepspeed_config"]
    ds = {"gradient_accumulation_steps": shipped["gradient_accumulation_steps"], "gradient_clipping": 1.0}
    plugin = SimpleNamespace(deepspeed_config=ds)
    acc = SimpleNamespace(
        distributed_type=DistributedType.DEEPSPEED,
        num_processes=4,
        state=SimpleNamespace(deepspeed_plugin=plugin),
    )
    configure_deepspeed(acc, cfg)
    assert ds == {
        "gradient_accumulation_steps": 1,
        "train_micro_batch_size_per_gpu": 2,
        "train_batch_size": 8,
        "gradient_clipping": 0.5,
    }
    ds["gradient_accumulation_steps"] = 4  # DeepSpeed would then step once per 4 of our micro-batches
    with pytest.raises(ConfigError, match=r"deepspeed_config\.gradient_accumulation_steps is 4"):
        configure_deepspeed(acc, cfg)
    ddp = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU)
    configure_deepspeed(ddp, cfg)  # nothing to do outside DeepSpeed


def test_the_shipped_accelerate_configs_fit_the_recipe() -> None:
    """The settings the recipe relies on, in each shipped engine config."""
    from auralign.models.testing import tiny_qwen2audio

    configs = {p.stem: yaml.safe_load(p.read_text()) for p in ACCELERATE.glob("*.yaml")}
    assert set(configs) == {"ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"}
    for name in ("deepspeed-zero2", "deepspeed-zero3"):
        assert configs[name]["deepspeed_config"]["gradient_accumulation_steps"] == 1, name  # we accumulate
    # get_state_dict refuses ZeRO-3 without it: the adapter could not be gathered
    assert configs["deepspeed-zero3"]["deepspeed_config"]["zero3_save_16bit_model"] is True
    fsdp = configs["fsdp"]["fsdp_config"]
    assert fsdp["fsdp_use_orig_params"] is True  # frozen weights and LoRA leaves share FSDP's flat tensors
    # accelerate finds the layers to wrap by class name in the model: each must be one of Qwen2-Audio's
    classes = {type(m).__name__ for m in tiny_qwen2audio().hf.modules()}
    assert set(fsdp["fsdp_transformer_layer_cls_to_wrap"].split(",")) <= classes
