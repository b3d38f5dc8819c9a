"""`auralign train` on several processes: two CPU processes under `accelerate launch` (gloo, the shipped
configs/accelerate/ddp.yaml) end with the adapter one process ends with at the same global batch; a kill -9
of the launcher takes its workers with it, and the rerun resumes to the same weights.

Why they agree: the loss is summed over answer tokens and divided by the token count of the whole global
batch (every micro-batch on every process), and micro-batch m of a step is the same samples of the seeded
order whatever the number of processes (`recipe.py`). The unit tests below pin each piece: the summed loss,
accumulation over micro-batches, the checkpoint folder every process writes, the adapter written from a
gathered state dict rather than the module's own (possibly sharded) tensors.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from _models_fixtures import save_tiny_qwen, write_corpus
from auralign.errors import ConfigError
from auralign.models.base import IGNORE, AudioLLM, chat_from_sample
from auralign.train.common import checkpoint_folder, pending_folder
from test_resume import kill_when

REPO = Path(__file__).resolve().parents[1]
#: float32 tolerance on the final LoRA weights (|w| <= 0.19) after 4 AdamW steps at lr 1e-2: the two runs
#: sum the same gradients in another order; observed max |diff| 2.5e-6. The token-mean bug this guards
#: against (each process averaging over its own tokens) moved them by 4e-2.
ATOL = 5e-5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_env() -> dict[str, str]:
    """A CPU-only run even where GPUs exist: accelerate then starts gloo processes (`cpu=True`)."""
    return os.environ | {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


def launch(*args: str) -> list[str]:
    """`accelerate launch` of two processes with the shipped DDP config (its bf16 set off: CPU runs fp32),
    running `args` (e.g. "-m", "auralign.cli", "train", CONFIG)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "configs" / "accelerate" / "ddp.yaml"),
        "--num_processes",
        "2",
        "--mixed_precision",
        "no",
        "--main_process_port",
        str(free_port()),
        *args,
    ]


def launch_train(config: Path) -> list[str]:
    return launch("-m", "auralign.cli", "train", str(config))


def one_process(config: Path) -> list[str]:
    return [sys.executable, "-m", "auralign.cli", "train", str(config)]


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def train_config(root: Path, name: str, corpus: dict[str, Path], batch_size: int) -> Path:
    """8 samples x 3.625 epochs = 29: 8 global micro-batches of 4, the last of one sample (one process
    gets none: it backpropagates a filler weighed 0), accumulated 2 per step: 4 steps, each checkpointed."""
    body = {
        "output_dir": str(root / name),
        "model": {"backend": "qwen2audio", "path": str(corpus["model"])},
        "stages": [{"name": "ac", "data": [{"manifest": str(corpus["ac"])}], "epochs": 3.625}],
        "lora": {"dropout": 0.0},
        "batch_size": batch_size,
        "grad_accum": 2,
        "optim": {"lr": 1e-2},
        "save_every": 1,
        "keep_checkpoints": 10,
        "tensorboard": False,
        "threads": 1,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def adapter(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "adapter" / "adapter_model.safetensors")


def log_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def workers_of(config: Path) -> list[int]:
    """Live processes whose command line names `config` (the launcher's workers do)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(config).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # ended while we looked
            continue
    return found


def assert_workers_die(config: Path, within_s: float = 20) -> None:
    """The workers of a killed launcher (named by their `config`) must end with it, within `within_s`."""
    deadline = time.monotonic() + within_s
    while workers_of(config) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers_of(config) == [], "a worker outlived its killed launcher"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distributed")
    return {"root": root, "model": save_tiny_qwen(root / "tiny"), "ac": write_corpus(root / "ac", n=8)}


@pytest.fixture(scope="module")
def runs(corpus) -> dict[str, Path]:
    """One process at batch 4 and two at batch 2 each (the same global batch), both uninterrupted."""
    root = corpus["root"]
    run(one_process(train_config(root, "one", corpus, batch_size=4)))
    run(launch_train(train_config(root, "two", corpus, batch_size=2)))
    return {"one": root / "one", "two": root / "two"}


def test_two_processes_end_with_the_adapter_of_one_process_at_the_same_global_batch(runs) -> None:
    one, two = adapter(runs["one"]), adapter(runs["two"])
    assert one.keys() == two.keys() and len(one) == 28
    diff = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert diff < ATOL, diff
    assert max(float(v.abs().max()) for v in one.values()) > 0.1  # trained: the bound is not vacuous
    # the logged loss is the global batch's token mean in both runs
    rows = [log_rows(runs[name]) for name in ("one", "two")]
    assert [r["stage_step"] for r in rows[0]] == [r["stage_step"] for r in rows[1]] == [1, 2, 3, 4]
    for a, b in zip(*rows, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["lr"] == b["lr"]
    # every checkpoint holds both processes' RNG states and says who wrote it
    last = runs["two"] / "checkpoints" / "ckpt-00-0000004"
    assert (last / "random_states_0.pkl").is_file() and (last / "random_states_1.pkl").is_file()
    assert json.loads((last / "position.json").read_text()) == {"stage": 0, "step": 4, "processes": 2}
    assert load_file(last / "adapter" / "adapter_model.safetensors").keys() == two.keys()


def test_each_process_draws_from_its_own_torch_stream(runs) -> None:
    """Processes seeded alike would drop the same positions of their different micro-batches: after the
    weights are built (alike), each reseeds with seed + rank, so the checkpointed torch states differ."""
    last = runs["two"] / "checkpoints" / "ckpt-00-0000001"
    states = [torch.load(last / f"random_states_{r}.pkl", weights_only=False) for r in (0, 1)]
    assert not torch.equal(states[0]["torch_manual_seed"], states[1]["torch_manual_seed"])
    generator = torch.Generator().manual_seed(1)  # rank 1's stream: seed 0 + rank 1, nothing drawn yet
    assert torch.equal(states[1]["torch_manual_seed"], generator.get_state())


def test_a_killed_launcher_takes_its_workers_and_the_rerun_resumes_to_the_same_weights(
    corpus, runs, tmp_path
) -> None:
    config = train_config(tmp_path, "killed", corpus, batch_size=2)
    out = tmp_path / "killed"
    first = out / "checkpoints" / "ckpt-00-0000001"
    env = os.environ.copy()
    os.environ.update(cpu_env())  # kill_when starts the command with this process's environment
    try:
        kill_when(launch_train(config), first.is_dir, tmp_path / "killed.log")
    finally:
        os.environ.clear()
        os.environ.update(env)
    assert_workers_die(config)
    assert not (out / "done.json").exists()  # killed mid-run
    kept = (first / "position.json").stat().st_ino
    run(launch_train(config))
    assert (first / "position.json").stat().st_ino == kept  # resumed, not trained again from the start
    whole, resumed = adapter(runs["two"]), adapter(out)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)  # bit-exact: gloo sums in a fixed order
    keys = ("step", "stage_step", "loss", "lr")
    assert [[r[k] for k in keys] for r in log_rows(out)] == [
        [r[k] for k in keys] for r in log_rows(runs["two"])
    ]


def test_every_process_refuses_a_folder_of_another_config_and_none_hangs(corpus, tmp_path) -> None:
    config = train_config(tmp_path, "other", corpus, batch_size=2)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"seed": 7}))
    proc = subprocess.run(launch_train(config), env=cpu_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    said = proc.stderr.count("other: holds an unfinished run with a different config (differs in:")
    assert said == 2, proc.stderr[-3000:]  # each process named the folder, then both stopped
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["config.json"]  # nothing written


def test_micro_batches_accumulate_to_the_gradient_of_their_whole_batch(corpus, tmp_path) -> None:
    """One process: batch 4 in one micro-batch, and batch 2 accumulated twice, reach the same adapter (the
    answers differ in length, so a mean of per-micro-batch means would not)."""
    from auralign.train.sft.config import TrainConfig
    from auralign.train.sft.recipe import train

    outs = []
    for name, batch_size, accumulate in (("whole", 4, 1), ("split", 2, 2)):
        body = yaml.safe_load(train_config(tmp_path, name, corpus, batch_size).read_text())
        body |= {"grad_accum": accumulate, "save_every": 100}
        body["stages"][0]["epochs"] = 2
        outs.append(train(TrainConfig.model_validate(body)).parent)
    whole, split = adapter(outs[0]), adapter(outs[1])
    assert max(float((whole[k] - split[k]).abs().max()) for k in whole) < ATOL


# ---------------------------------------------------------------- the summed loss


@pytest.fixture(scope="module")
def llm_and_batch(corpus) -> tuple[AudioLLM, dict[str, torch.Tensor]]:
    from auralign.data.manifest import load_manifest
    from auralign.models.factory import ModelConfig, build_model
    from auralign.models.lora import LoraSettings, apply_lora

    llm = build_model(ModelConfig(backend="qwen2audio", path=str(corpus["model"])), seed=0)
    apply_lora(llm, LoraSettings(dropout=0.0))
    chats = [chat_from_sample(s, corpus["ac"].parent) for s in load_manifest(corpus["ac"])[:4]]
    return llm, llm.collate(chats)


def test_token_loss_is_the_cross_entropy_summed_over_answer_tokens(llm_and_batch) -> None:
    llm, batch = llm_and_batch
    with torch.no_grad():
        # independently: the full vocabulary logits of every position, scored at the labelled ones
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = llm.hf(**inputs).logits[:, :-1].float()
        targets = batch["labels"][:, 1:]
        keep = targets != IGNORE
        expected = -logits.log_softmax(-1)[keep].gather(-1, targets[keep][:, None]).sum()
        count = llm.label_token_count(batch)
        assert count == int(keep.sum()) and len(set(keep.sum(1).tolist())) > 1  # answers of unequal length
        summed = llm.token_loss(batch)
        assert torch.allclose(summed, expected, rtol=1e-5)
        assert torch.allclose(llm(batch, reduction="sum"), summed)
        assert torch.allclose(llm(batch) * count, summed, rtol=1e-5)  # the mean, times the count
        # a backend without its own token_loss gets the same from loss x count
        assert torch.allclose(AudioLLM.token_loss(llm, batch), summed, rtol=1e-5)


# ---------------------------------------------------------------- checkpoints every process writes


def test_a_checkpoint_folder_holds_what_every_process_wrote_and_is_published_once(tmp_path) -> None:
    parent = tmp_path / "checkpoints"
    barrier = threading.Barrier(2)
    seen: dict[int, Path] = {}
    errors: list[BaseException] = []

    def process(rank: int, name: str) -> None:
        try:
            with checkpoint_folder(
                parent / name, prefix="ckpt-", keep=2, durable=True, main=rank == 0, barrier=barrier.wait
            ) as tmp:
                seen[rank] = tmp
                (tmp / f"part_{rank}").write_text(str(rank))
                assert not (parent / name).exists()  # nothing published while any process writes
        except BaseException as error:  # re-raised by the test, not lost in the thread
            errors.append(error)

    for name in ("ckpt-1", "ckpt-2", "ckpt-3"):
        threads = [threading.Thread(target=process, args=(rank, name)) for rank in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        assert seen[0] == seen[1] == pending_folder(parent / name)
        assert sorted(p.name for p in (parent / name).iterdir()) == ["part_0", "part_1"]
    assert sorted(p.name for p in parent.iterdir()) == ["ckpt-2", "ckpt-3"]  # keep=2, no temporary left
    lone = checkpoint_folder(parent / "ckpt-4", prefix="ckpt-", keep=2, durable=False, main=False)
    with pytest.raises(ValueError, match="needs a barrier"), lone:
        pass


def test_a_checkpoint_of_another_number_of_processes_is_refused(tmp_path) -> None:
    from auralign.train.sft.state import Position, read_position

    folder = tmp_path / "ckpt-00-0000003"
    folder.mkdir()
    (folder / "position.json").write_text(json.dumps({"stage": 0, "step": 3, "processes": 2}))
    assert read_position(folder, 2) == Position(0, 3)
    with pytest.raises(ConfigError, match=r"ckpt-00-0000003: written by 2 processes, this run has 1"):
        read_position(folder, 1)


def test_a_checkpoint_of_the_earlier_format_resumes_to_the_same_weights(corpus, tmp_path) -> None:
    """trainable.safetensors + state.pt (one process), as auralign wrote checkpoints before accelerate's
    save_state: a run killed then still finishes where an uninterrupted run does."""
    import shutil

    from auralign.train.sft.config import TrainConfig
    from auralign.train.sft.recipe import train

    body = yaml.safe_load(train_config(tmp_path, "straight", corpus, batch_size=4).read_text())
    body["lora"]["dropout"] = 0.05  # the RNG states matter too
    straight = train(TrainConfig.model_validate(body)).parent
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text((straight / "config.json").read_text().replace(str(straight), str(old)))
    source = straight / "checkpoints" / "ckpt-00-0000002"
    legacy = old / "checkpoints" / "ckpt-00-0000002"
    legacy.mkdir(parents=True)
    shutil.copy(source / "trainable.safetensors", legacy / "trainable.safetensors")
    rng = torch.load(source / "random_states_0.pkl", weights_only=False)
    state = {
        "stage": 0,
        "step": 2,
        "optimizer": torch.load(source / "optimizer.bin", weights_only=False),
        "scheduler": torch.load(source / "custom_checkpoint_0.pkl", weights_only=False),
        "rng": {
            "python": rng["random_state"],
            "numpy": rng["numpy_random_seed"],
            "torch": rng["torch_manual_seed"],
        },
    }
    torch.save(state, legacy / "state.pt")
    train(TrainConfig.model_validate(body | {"output_dir": str(old)}))
    assert [row["stage_step"] for row in log_rows(old)] == [3, 4]  # resumed after step 2
    a, b = adapter(straight), adapter(old)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- adapters from a gathered state dict


def test_an_adapter_written_from_a_state_dict_is_the_adapter_of_those_values(llm_and_batch, tmp_path) -> None:
    """What a sharding engine gathers is written, not what the module holds: here the module keeps other
    values than the state dict handed over, as a shard would."""
    from auralign.models.lora import save_adapter as save_local
    from auralign.train.sft.state import write_adapter

    llm, _ = llm_and_batch
    state = {k: v.clone() for k, v in llm.state_dict().items()}
    write_adapter(llm, state, tmp_path / "same")
    save_local(llm, tmp_path / "local")
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (tmp_path / "same" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    gathered = {k: v + 1 if "lora_" in k else v for k, v in state.items()}
    write_adapter(llm, gathered, tmp_path / "gathered")
    written = load_file(tmp_path / "gathered" / "adapter_model.safetensors")
    local = load_file(tmp_path / "local" / "adapter_model.safetensors")
    assert written.keys() == local.keys() and all(torch.equal(written[k], local[k] + 1) for k in local)


def tiny_composed() -> AudioLLM:
    """The composed backend over a tiny random Qwen2 LM (nothing generated: only its parts are saved)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from auralign.models.acc.composed import ComposedAudioLLM
    from auralign.models.testing import tiny_qwen2audio

    tokenizer = tiny_qwen2audio().tokenizer
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    encoder = nn.Linear(8, 8)
    encoder.dim = 8
    return ComposedAudioLLM(Qwen2ForCausalLM(config), tokenizer, encoder)


def test_extras_outside_the_peft_model_are_written_from_the_state_dict(tmp_path) -> None:
    from auralign.models.lora import LoraSettings, apply_lora
    from auralign.train.sft.state import write_adapter

    llm = tiny_composed()
    apply_lora(llm, LoraSettings(train_projector=True, dropout=0.0))
    own = {k: v.clone() for k, v in llm.projector.state_dict().items()}
    state = {k: v.clone() for k, v in llm.state_dict().items()}
    shifted = {k: v + 1 if k.startswith("projector.") else v for k, v in state.items()}
    write_adapter(llm, shifted, tmp_path / "adapter")
    saved = load_file(tmp_path / "adapter" / "projector.safetensors")
    assert saved.keys() == own.keys() and all(torch.equal(saved[k], own[k] + 1) for k in own)
    assert all(torch.equal(llm.projector.state_dict()[k], own[k]) for k in own)  # the module's own again
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_a_checkpoint_missing_a_trained_weight_names_the_file_and_the_weight(llm_and_batch, tmp_path) -> None:
    from auralign.errors import DataError
    from auralign.train.sft.state import load_trainable, trainable_state

    llm, _ = llm_and_batch
    state = trainable_state(llm)
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped}, str(tmp_path / "trainable.safetensors"))
    with pytest.raises(DataError, match=rf"trainable\.safetensors: lacks {dropped}"):
        load_trainable(llm, tmp_path / "trainable.safetensors")
