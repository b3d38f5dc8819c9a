"""DALI's stages on several processes: two CPU processes under `accelerate launch` (gloo, the shipped
configs/accelerate/ddp.yaml) end `dali prefix`, `dali align` (mmd, attentive OT) and `dali distill` with the
weights one process ends with at the same global batch, and write the pseudo-captions one process writes; a
kill -9 of the launcher takes its workers with it and the rerun resumes to the same weights.

Why they agree (`auralign.train.dali.processes`): `batch_size` is the global batch, each process takes a
contiguous share of it, per-sample losses are weighed by the share, LM losses by the share of answer tokens,
and the gradients of every trained module are summed over the processes before each optimiser step. The
shares here are uneven (3 = 2 + 1) and the last batch of an epoch leaves one process empty-handed.

What "the same weights" means under Adam: it divides each gradient by its own magnitude, so an element whose
exact gradient is zero (a bias a softmax cancels: attention key biases, attentive OT's value and output
biases) moves by rounding noise in both runs, up to ~lr a step, while every other element agrees to
float32 tolerance. The gradients themselves are compared first, on two spawned gloo processes.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from _models_fixtures import write_av_clips
from auralign.errors import ConfigError, DataError
from auralign.fileio import Journal
from auralign.train import dali
from auralign.train.dali.build import build_captioner
from auralign.train.dali.config import (
    AlignConfig,
    AudioSource,
    CaptionConfig,
    DistillConfig,
    PrefixConfig,
)
from auralign.train.dali.processes import Processes, processes
from test_dali_stages import MODEL
from test_distributed import assert_workers_die, cpu_env, free_port, launch
from test_resume import kill_when

#: float32 tolerance on final weights (|w| <= 1.1) after 6-9 Adam steps: the two runs sum the same gradients
#: in another order. Observed max |diff|: prefix 1.1e-7, align mmd 1.2e-7, attentive OT's audio tokenizer
#: 1.7e-6, distill's projector 4.2e-8. Weighing micro-batches by samples instead of answer tokens moved the
#: prefix by 0.12; leaving a share's weight out fails the gradient test.
ATOL = 1e-5
#: attentive OT's heads at the paper's lambda (500): their gradients (1e-8..1e-5) are at Adam's eps, where its
#: normalisation magnifies rounding, against steps of lr 1e-4; observed max |diff| 2.2e-5
HEADS_ATOL = 5e-5
CAPTIONS = [
    "a dog barks while a car passes by",
    "birds chirp and a man speaks",
    "water runs from a tap",
    "an engine idles then accelerates loudly",
    "music plays as people talk",
    "a dog barks and birds chirp",
    "rain falls on a tin roof",
]
ALIGN_LR, HEADS_LR = 1e-3, 1e-4  # the heads' lr: AttentionSettings' default


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=cpu_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def write_yaml(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


def weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
    return load_file(str(folder / f"{part}.safetensors"))


def log_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def cancelled(name: str, value: torch.Tensor) -> torch.Tensor:
    """The elements of a weight whose exact gradient is zero: biases a softmax cancels. In an attention the
    key bias shifts every score of a query alike; in attentive OT's heads the weights are a softmax over the
    tokens of the channel-mean output, which a value bias, an output bias or a key bias shifts alike."""
    mask = torch.zeros_like(value, dtype=torch.bool)
    dim = value.shape[0] // 3 if value.dim() == 1 else 0
    if name.endswith("attn.qkv.bias"):  # CAV-MAE: [query; key; value]
        mask[dim : 2 * dim] = True
    elif name.endswith("in_proj_bias"):  # attentive OT's heads: key and value
        mask[dim:] = True
    elif name.endswith("out_proj.bias") or name.split(".")[0] in ("k_x", "k_y", "v_x", "v_y"):
        mask[:] = name.endswith("bias")
    return mask


def compare(one: dict, two: dict, atol: float, noise: float) -> float:
    """Max |diff| over the elements a gradient moves (<= atol); the cancelled ones, moved by rounding noise
    alone, within `noise` (what Adam's normalised steps can reach)."""
    assert one.keys() == two.keys()
    worst = 0.0
    for name in one:
        diff = (one[name] - two[name]).abs()
        mask = cancelled(name, diff)
        moved = float(diff[~mask].max()) if (~mask).any() else 0.0
        assert moved <= atol, (name, moved)
        assert float(diff[mask].max()) <= noise if mask.any() else True, name
        worst = max(worst, moved)
    return worst


def max_change(after: dict, before: dict) -> float:
    return max(float((after[k] - before[k]).abs().max()) for k in after)


# ---------------------------------------------------------------- shares and token counts


def test_a_batch_is_split_into_contiguous_shares_in_rank_order() -> None:
    batch = [7, 3, 9, 1, 4]
    for world in (1, 2, 3, 6):
        shares = [Processes(rank, world).split(batch) for rank in range(world)]
        assert [i for s in shares for i in s.indices] == batch
        sizes = [len(s.indices) for s in shares]
        assert max(sizes) - min(sizes) <= 1 and all(s.sizes == tuple(sizes) for s in shares)
        assert sum(s.weight for s in shares) == pytest.approx(1.0)
    assert Processes(1, 2).split([5]).indices == []  # fewer samples than processes: an empty share


def test_a_launch_refuses_a_device_of_its_own(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"device: 'cuda:1' under a launch of several processes"):
        processes("cuda:1")


def test_answer_tokens_count_the_labels_the_loss_averages_over() -> None:
    from auralign.models.base import IGNORE
    from auralign.models.dali.captioner import DALICaptioner
    from auralign.models.testing import tiny_llava
    from auralign.train.dali.lm_training import answer_tokens

    captioner = DALICaptioner(tiny_llava(), None, prefix_length=2)
    counts = answer_tokens(captioner, CAPTIONS[:3])
    labels = captioner.build_inputs(answers=CAPTIONS[:3])["labels"]
    assert counts == (labels[:, 1:] != IGNORE).sum(1).tolist()  # the targets masked_lm_loss scores
    assert len(set(counts)) == 3  # unequal: weighing micro-batches by samples would differ


# ---------------------------------------------------------------- one process's gradients on two


def gradient_case(method: str):
    """An aligner over the tiny CAV-MAE and 5 clips' inputs, the same in every process (seeded)."""
    from auralign.config import validate

    torch.manual_seed(0)
    audio = dali.build_audio(validate(MODEL["audio"], AudioSource), 16)
    cfg = AlignConfig(
        output_dir="o",
        prefix_dir="p",
        data={"manifest": "m"},
        method=method,
        attention={"lambdas": [2.0]},  # a mild entropy bonus: the heads' gradients well above rounding
    )
    aligner = dali.make_aligner(cfg, audio, torch.device("cpu"))
    return aligner, torch.randn(5, 1024, 128), torch.randn(5, 24, 16)


GRADIENT_CASES = {  # name: method, epoch, batch (two processes: shares of 3 + 2, or 1 + none)
    "mmd": ("mmd", 1, [0, 1, 2, 3, 4]),
    "mmd, one sample": ("mmd", 1, [3]),
    "contrastive": ("contrastive", 1, [4, 0, 2, 1, 3]),
    "contrastive, one sample": ("contrastive", 1, [3]),
    "attentive OT, heads frozen": ("attentive_ot", 1, [0, 1, 2, 3, 4]),
    "attentive OT, heads train": ("attentive_ot", 2, [2, 0, 1, 4, 3]),
    "attentive OT, one sample": ("attentive_ot", 2, [3]),
}


def step_gradients(procs: Processes | None, name: str) -> dict:
    """The gradients both optimisers step with, and the logged row, for one case on this process's share
    (`procs` None: one process, the whole batch)."""
    method, epoch, batch = GRADIENT_CASES[name]
    aligner, inputs, images = gradient_case(method)
    seen: dict[str, list[torch.Tensor]] = {}
    for part, opt in (("encoder", aligner.optimizer), ("heads", aligner.attention_optimizer)):
        if opt is None:
            continue

        def spy(*args, _part=part, _opt=opt, _step=opt.step, **kwargs):
            seen[_part] = [p.grad.clone() for g in _opt.param_groups for p in g["params"]]
            return _step(*args, **kwargs)

        opt.step = spy
    share = procs.split(batch) if procs is not None else None
    mine = share.indices if share is not None else batch
    tokens = (aligner.audio(inputs[mine]), images[mine]) if mine else (None, None)
    row = dali.align_step(aligner, *tokens, epoch, share)
    return {"grads": seen, "row": row}


def gradient_worker(rank: int, port: int, out: str) -> None:
    """One of two gloo processes: every case's gradients, and `sum_grads` on parameters some process lacks."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    procs = Processes(rank, 2, torch.device("cpu"))
    results = {name: step_gradients(procs, name) for name in GRADIENT_CASES}
    some, none = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    if rank == 0:
        some.grad = torch.tensor([1.0, 2.0, 3.0])
    procs.sum_grads([some, none])
    results["sum_grads"] = (some.grad.clone(), none.grad)
    torch.save(results, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_align_step_on_two_processes_sums_to_the_gradients_of_one(tmp_path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(gradient_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for name in GRADIENT_CASES:
        one = step_gradients(None, name)
        for two in ranks:  # both processes step with the same gradients: those of one process
            assert one["grads"].keys() == two[name]["grads"].keys(), name
            for part, grads in one["grads"].items():
                # rounding relative to the module's largest gradient: some of the heads' are exactly zero
                scale = max(float(g.abs().max()) for g in grads)
                for theirs, ours in zip(grads, two[name]["grads"][part], strict=True):
                    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * scale)
            assert two[name]["row"].keys() == one["row"].keys()
            for key, value in one["row"].items():
                assert two[name]["row"][key] == pytest.approx(value, rel=1e-5), (name, key)
    assert "heads" not in ranks[0]["attentive OT, heads frozen"]["grads"]  # their optimiser did not step
    for rank in ranks:
        some, none = rank["sum_grads"]
        assert some.tolist() == [1.0, 2.0, 3.0] and none is None  # None only where no process has one


# ---------------------------------------------------------------- the stages under accelerate launch


def stage_configs(root: Path, name: str, manifest: Path, prefix_dir: Path, align_dir: Path) -> dict:
    """The stage runs compared, all at global batches that leave one process empty-handed at an
    epoch's end: prefix (5 pairs, batch 4), align (7 clips, batch 3, checkpoint every step), distill
    (batch 4), caption (batch 2, from the one-process distill folder); the two processes' prefix and distill
    split their shares into micro-batches of 1."""
    data = {"manifest": str(manifest)}
    two = name == "two"
    align = {"prefix_dir": str(prefix_dir), "data": data, "epochs": 3, "batch_size": 3, "lr": ALIGN_LR}
    align |= {"save_every": 1, "keep_checkpoints": 20}
    body = {
        "prefix": {
            "output_dir": str(root / name / "prefix"),
            "model": MODEL,
            "data": data,
            "num_pairs": 5,
            "epochs": 3,
            "batch_size": 4,
            "lr": 3e-2,
            "warmup_ratio": 0,
        }
        | ({"micro_batch_size": 1} if two else {}),
        "mmd": {"output_dir": str(root / name / "mmd"), "method": "mmd", **align},
        "attentive_ot": {"output_dir": str(root / name / "attentive_ot"), "method": "attentive_ot", **align},
        "distill": {
            "output_dir": str(root / name / "distill"),
            "align_dir": str(align_dir),
            "data": data,
            "pseudo": {"max_new_tokens": 5, "batch_size": 2},
            "epochs": 2,
            "batch_size": 4,
            "lr": 1e-2,
            "warmup_ratio": 0,
        }
        | ({"micro_batch_size": 1} if two else {}),
        "caption": {
            "distill_dir": str(root / "one" / "distill"),
            "output": str(root / name / "predictions.jsonl"),
            "data": data,
            "mode": "audio-visual",
            "generation": {"max_new_tokens": 4, "batch_size": 2},
        },
    }
    return {key: write_yaml(root / f"{name}-{key}.yaml", value) for key, value in body.items()}


KINDS = {
    "prefix": PrefixConfig,
    "mmd": AlignConfig,
    "attentive_ot": AlignConfig,
    "distill": DistillConfig,
    "caption": CaptionConfig,
}
RECIPES = {
    "prefix": dali.prefix_tune,
    "mmd": dali.align,
    "attentive_ot": dali.align,
    "distill": dali.distill,
    "caption": dali.caption,
}
VERBS = {
    "prefix": "prefix",
    "mmd": "align",
    "attentive_ot": "align",
    "distill": "distill",
    "caption": "caption",
}
DRIVER = """import sys
from auralign.cli import main
for verb, config in zip(sys.argv[1::2], sys.argv[2::2]):
    if main(["dali", verb, config, "--no-progress"]):
        sys.exit(1)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Each stage in one process (in this one), then all of them under one two-process launch through the
    CLI; both runs of align, distill and caption start from the one-process prefix, mmd and distill
    folders."""
    root = tmp_path_factory.mktemp("dali-distributed")
    manifest = write_av_clips(root / "clips", CAPTIONS, step_hz=150, shade=30, references=True)
    one = stage_configs(root, "one", manifest, root / "one" / "prefix", root / "one" / "mmd")
    for key, path in one.items():
        RECIPES[key](KINDS[key].model_validate(yaml.safe_load(path.read_text())), progress=False)
    two = stage_configs(root, "two", manifest, root / "one" / "prefix", root / "one" / "mmd")
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    run(launch(str(driver), *[arg for key, path in two.items() for arg in (VERBS[key], str(path))]))
    return {"root": root, "manifest": manifest, "configs": two, "one": root / "one", "two": root / "two"}


def test_prefix_on_two_processes_in_micro_batches_ends_with_the_prefix_of_one(runs) -> None:
    one, two = (weights(runs[n] / "prefix", "prefix") for n in ("one", "two"))
    assert compare(one, two, ATOL, noise=0.0) <= ATOL
    initial = build_captioner(
        PrefixConfig.model_validate(yaml.safe_load(runs["configs"]["prefix"].read_text())).model,
        torch.device("cpu"),
        with_audio=False,
    ).prefix.state_dict()
    assert max_change(one, initial) > 1000 * ATOL  # trained: the bound is not vacuous
    rows = [log_rows(runs[n] / "prefix") for n in ("one", "two")]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]] == list(range(1, 7))
    for a, b in zip(*rows, strict=True):  # the logged loss is the global batch's token mean in both
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["lr"] == b["lr"]


@pytest.mark.parametrize("method", ["mmd", "attentive_ot"])
def test_align_on_two_processes_ends_with_the_weights_of_one(runs, method) -> None:
    folders = [runs[n] / method for n in ("one", "two")]
    one, two = (weights(f, "audio") for f in folders)
    steps = 9  # 3 epochs of 3 batches (3, 3, 1)
    assert compare(one, two, ATOL, noise=2 * ALIGN_LR * steps) <= ATOL
    first = weights(folders[0] / "checkpoints" / "epoch-001-step-0000001", "audio")
    assert max_change(one, first) > 100 * ATOL
    if method == "attentive_ot":
        heads = [weights(f, "attentive_ot") for f in folders]
        assert compare(*heads, HEADS_ATOL, noise=2 * HEADS_LR * 6) <= HEADS_ATOL  # trained in epochs 2, 3
        frozen = weights(folders[0] / "checkpoints" / "epoch-001-step-0000003", "attentive_ot")
        assert max_change(heads[0], frozen) > 5 * HEADS_ATOL
    rows = [log_rows(f) for f in folders]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]] == list(range(1, 10))
    for a, b in zip(*rows, strict=True):
        assert a.keys() == b.keys()
        for key in a.keys() - {"stage"}:
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    # the main process wrote the folder: its outputs, one checkpoint per step, the prefix carried over
    ckpts = sorted(p.name for p in (folders[1] / "checkpoints").iterdir())
    assert len(ckpts) == 9 and ckpts[-1] == "epoch-003-step-0000003"
    last = torch.load(folders[1] / "checkpoints" / ckpts[-1] / "state.pt", weights_only=False)
    assert (last["epoch"], last["step"], last["processes"]) == (3, 3, 2)
    assert (folders[1] / "prefix.safetensors").read_bytes() == (
        folders[0] / "prefix.safetensors"
    ).read_bytes()


def test_distill_on_two_processes_writes_the_pseudo_captions_and_projector_of_one(runs) -> None:
    folders = [runs[n] / "distill" for n in ("one", "two")]
    pseudo = [(f / "pseudo_captions.jsonl").read_bytes() for f in folders]
    assert pseudo[0] == pseudo[1]  # batches 0, 2 by one process and 1, 3 by the other, in sample order
    assert len(pseudo[0].splitlines()) == len(CAPTIONS)
    assert not list(folders[1].glob("pseudo_captions.jsonl.partial*"))  # every journal gone
    one, two = (weights(f, "audio_projector") for f in folders)
    assert compare(one, two, ATOL, noise=0.0) <= ATOL
    from auralign.models.testing import tiny_llava

    assert max_change(one, tiny_llava().projector.state_dict()) > 100 * ATOL


def test_caption_on_two_processes_writes_the_predictions_of_one(runs) -> None:
    one, two = ((runs[n] / "predictions.jsonl").read_bytes() for n in ("one", "two"))
    assert one == two and len(one.splitlines()) == len(CAPTIONS)
    assert (runs["two"] / "predictions.origin.json").is_file()
    assert not list(runs["two"].glob("predictions.jsonl.partial*"))


def test_a_checkpoint_of_two_processes_resumes_in_one(runs, tmp_path) -> None:
    """The global batch is the config's, whatever the number of processes: a two-process checkpoint resumes
    in one process to the weights of the uninterrupted run."""
    source = runs["two"] / "attentive_ot"
    out = tmp_path / "attentive_ot"
    shutil.copytree(source, out)
    for ckpt in (out / "checkpoints").glob("epoch-003-*"):
        shutil.rmtree(ckpt)
    for name in ("done.json", "audio.safetensors", "attentive_ot.safetensors", "prefix.safetensors"):
        (out / name).unlink()
    config = json.loads((out / "config.json").read_text())
    config["output_dir"] = str(out)
    (out / "config.json").write_text(json.dumps(config))
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == "epoch-002-step-0000003"
    dali.align(AlignConfig.model_validate(config), progress=False)
    assert [r["step"] for r in log_rows(out)] == list(range(1, 10))
    steps = 3  # epoch 3 ran again, in one process
    assert compare(weights(source, "audio"), weights(out, "audio"), ATOL, noise=2 * ALIGN_LR * steps) <= ATOL
    heads = (weights(source, "attentive_ot"), weights(out, "attentive_ot"))
    assert compare(*heads, HEADS_ATOL, noise=2 * HEADS_LR * steps) <= HEADS_ATOL


def test_a_killed_launcher_takes_its_workers_and_the_rerun_resumes_to_the_same_weights(
    runs, tmp_path
) -> None:
    body = yaml.safe_load(runs["configs"]["attentive_ot"].read_text())
    out = tmp_path / "killed"
    config = write_yaml(tmp_path / "killed.yaml", body | {"output_dir": str(out)})
    first = out / "checkpoints" / "epoch-001-step-0000001"
    verb = ("-m", "auralign.cli", "dali", "align", str(config), "--no-progress")
    with pytest.MonkeyPatch.context() as patch:  # kill_when starts the command with this environment
        for key, value in cpu_env().items():
            patch.setenv(key, value)
        kill_when(launch(*verb), first.is_dir, tmp_path / "killed.log")
    assert_workers_die(config)
    assert not (out / "done.json").exists()  # killed mid-run
    kept = (first / "state.pt").stat().st_ino
    run(launch(*verb))
    assert (first / "state.pt").stat().st_ino == kept  # resumed, not trained again from the start
    whole = runs["two"] / "attentive_ot"
    for part in ("audio", "attentive_ot"):
        a, b = weights(whole, part), weights(out, part)
        assert all(torch.equal(a[k], b[k]) for k in a), part  # bit-exact: gloo sums in a fixed order
    assert log_rows(out) == log_rows(whole)


def test_every_process_refuses_a_folder_of_another_config_and_none_hangs(runs, tmp_path) -> None:
    body = yaml.safe_load(runs["configs"]["mmd"].read_text())
    out = tmp_path / "other"
    config = write_yaml(tmp_path / "other.yaml", body | {"output_dir": str(out)})
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"seed": 7}))
    cmd = launch("-m", "auralign.cli", "dali", "align", str(config), "--no-progress")
    proc = subprocess.run(cmd, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    said = proc.stderr.count("other: holds an unfinished run with a different config (differs in:")
    assert said == 2, proc.stderr[-3000:]  # each process named the folder, then both stopped
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]  # nothing written


# ---------------------------------------------------------------- pseudo-caption journals


def test_pseudo_captions_merge_every_process_journal_in_sample_order(runs, tmp_path, monkeypatch) -> None:
    """The main process of two captions batches 0 and 2 and publishes them with what process 1 journalled
    (batch 1) in sample order; a journal of another origin is refused before any caption is made."""
    from auralign.train.dali.generation import generate_jsonl, journal_path

    captioner = dali.load_captioner(runs["one"] / "mmd", device="cpu")
    samples = dali.read_av_samples(
        AlignConfig.model_validate(yaml.safe_load(runs["configs"]["mmd"].read_text())).data
    )[:5]
    options = DistillConfig.model_validate(yaml.safe_load(runs["configs"]["distill"].read_text())).pseudo
    out, origin = tmp_path / "pseudo.jsonl", {"run": 1}
    other = Journal(journal_path(out, 1))
    other.claim(origin)
    for s in samples[2:4]:  # batch 1 (batch_size 2), as process 1 would have written it
        other.append({"id": s.id, "caption": f"by process 1: {s.id}"})
    monkeypatch.setattr(Processes, "barrier", lambda self: None)  # process 1 is done already
    main = Processes(0, 2)
    row = lambda s, text: {"id": s.id, "caption": text}  # noqa: E731
    kw = {"mode": "audio-visual", "options": options, "row": row, "progress": False, "desc": "pseudo"}
    with pytest.raises(DataError, match=r"pseudo\.jsonl\.partial\.1: holds unfinished work of another run"):
        generate_jsonl(captioner, samples, out=out, origin={"run": 2}, procs=main, **kw)
    assert not journal_path(out, 0).exists() or not Journal(journal_path(out, 0)).records()
    generate_jsonl(captioner, samples, out=out, origin=origin, procs=main, **kw)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [s.id for s in samples]
    assert [r["caption"].startswith("by process 1") for r in rows] == [False, False, True, True, False]
    alone = generate_jsonl(captioner, samples, out=tmp_path / "alone.jsonl", origin=origin, **kw)
    expected = [json.loads(line) for line in alone.read_text().splitlines()]
    assert [r for i, r in enumerate(rows) if i not in (2, 3)] == [
        r for i, r in enumerate(expected) if i not in (2, 3)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.jsonl", "pseudo.jsonl"]  # journals gone
