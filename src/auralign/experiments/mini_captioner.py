"""Training the mini image captioner (`auralign.models.dali.mini_llava`): the DALI miniature's stand-in for
LLaVA-1.5, trained by `auralign dali quickstart --from-scratch` or alone:

    python -m auralign.experiments.mini_captioner MANIFEST [OUT] [--steps N] [--seed N] ...

`train_mini_captioner` has two steps, mirroring how LLaVA-1.5 came to be:
1. the vision tower learns to see (CLIP's pretraining; here: which things and which setting a picture shows,
   a per-token classifier on its layer -2 tokens, max-pooled, trained on the manifest's `meta.nouns` and
   `meta.setting`); the projector then starts where LLaVA's first stage ends, mapping a token that shows a
   dog near the LM's embedding of "dog";
2. projector + vision tower learn to caption through the frozen LM with LLaVA's v1 chat prompt, exactly as
   `DALICaptioner(prefix_length=0)` builds it (answers end with the tokenizer's eos, `<|im_end|>` here).

The constant text before the image ("{system} USER: ") is run once through the frozen LM and its keys/values
reused every step (`HeadCache`): same loss, about 40 % less work per step on CPU. `caption_images` and
`score_captions` look at what a trained captioner learned.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from auralign.models.base import GenerationOptions, masked_lm_loss
from auralign.models.dali.captioner import DALI_PROMPT, LLAVA_V1_SYSTEM, DALICaptioner
from auralign.models.dali.llava import FrozenLlava
from auralign.models.dali.mini_llava import (
    DEFAULT_ARTIFACT,
    build_mini_llava,
    save_mini_captioner,
    vision_tokens,
)

# LLaVA answered many visual instructions; the mini captioner sees a few, DALI's own prompt among them, so
# that DALI's prompt starts from a model that describes the scene.
PROMPTS = (
    "Describe this image briefly.",
    "What can be seen in this picture?",
    "Describe the scene.",
    DALI_PROMPT,
)


class HeadCache:
    """Keys/values of the constant "{system} USER: " text, computed once; `loss` runs only what follows."""

    def __init__(self, captioner: DALICaptioner) -> None:
        llava, tok = captioner.llava, captioner.llava.tokenizer
        ids = torch.tensor(tok(f"{captioner.train_system} USER: ").input_ids)
        self.length = len(ids)
        with torch.no_grad():
            out = llava.language_model(inputs_embeds=llava.embed(ids)[None], use_cache=True)
        self.cache = out.past_key_values
        self.captioner = captioner

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        n, b = self.length, batch["inputs_embeds"].shape[0]
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(b)
        llava = self.captioner.llava
        hidden = llava.language_model(
            inputs_embeds=batch["inputs_embeds"][:, n:],
            attention_mask=batch["attention_mask"],
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        return masked_lm_loss(hidden, batch["labels"][:, n:], llava.lm_head)


def _load_images(llava: FrozenLlava, paths: list[Path]) -> torch.Tensor:
    from PIL import Image

    from auralign.errors import DataError

    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        except (OSError, ValueError) as e:
            raise DataError(f"{p}: cannot read the image ({e})") from None
    return llava.preprocess(images)


def _words(meta: dict[str, Any]) -> list[str]:
    """What a picture shows, as bare words: "a dog" -> "dog", "in a living room" -> "living room"."""
    things = [*meta.get("nouns", []), *([meta["setting"]] if meta.get("setting") else [])]
    return [re.sub(r"^(?:(?:in|on|at) )?(?:a|an|the) ", "", t) for t in things]


def _pretrain_vision(
    llava: FrozenLlava, pixels: torch.Tensor, metas: list[dict], steps: int, seed: int, log_line
) -> tuple[nn.Linear, list[str], torch.Tensor]:
    """Step 1, CLIP's role (see before you speak): which things and setting a picture shows, from its layer -2
    tokens, a per-token classifier max-pooled over tokens (so each token learns what it shows)."""
    names = sorted({w for m in metas for w in _words(m)})
    target = torch.zeros(len(metas), len(names))
    for i, m in enumerate(metas):
        target[i, [names.index(w) for w in _words(m)]] = 1.0
    head = nn.Linear(llava.token_dim, len(names))
    params = [*llava.vision_tower.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=max(1, steps), pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        idx = torch.randint(len(metas), (64,), generator=gen)
        logits = head(vision_tokens(llava, _augment(pixels[idx], gen))).amax(1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            log_line({"stage": "vision", "step": step, "loss": round(loss.item(), 4)})
    return head, names, target


@torch.no_grad()
def _init_projector(
    llava: FrozenLlava, head: nn.Linear, names: list[str], pixels: torch.Tensor, target
) -> None:
    """Start the projector where LLaVA's first stage ends: a token showing a dog lands near the LM's embedding
    of "dog". Hidden unit c = the classifier's logit for word c; its output column = that word's embedding,
    scaled so that a typical positive logit gives the embedding itself. Other units start small."""
    proj, tok = llava.projector, llava.tokenizer
    words = torch.stack(
        [llava.embed(torch.tensor(tok(f" {w}", add_special_tokens=False).input_ids)).mean(0) for w in names]
    )
    n = min(256, len(pixels))
    typical = head(vision_tokens(llava, pixels[:n])).amax(1)[target[:n] > 0].mean().clamp(min=1.0)
    c = len(names)
    proj.linear_1.weight.mul_(0.1)[:c] = head.weight
    proj.linear_1.bias.zero_()[:c] = head.bias
    proj.linear_2.weight.mul_(0.1)[:, :c] = words.T.to(proj.linear_2.weight.dtype) / typical
    proj.linear_2.bias.zero_()


def _augment(pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Horizontal flips: what is in a picture does not depend on its side."""
    flip = torch.rand(pixels.shape[0], generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)


def train_mini_captioner(
    manifest: str | os.PathLike,
    out: str | os.PathLike = DEFAULT_ARTIFACT,
    seed: int = 0,
    steps: int = 300,
    batch_size: int = 8,
    vision_steps: int = 600,
    lr: float = 1e-3,
    progress: bool = True,
) -> dict[str, Any]:
    """Train vision tower + projector of a fresh mini LLaVA on (image, visual caption) pairs; save to `out`.

    `manifest` is a captioner JSONL (`build_mini_av`'s captioner/train.jsonl). Writes out/log.jsonl (one line
    per logged step) and the weights; returns the summary also stored in out/config.json.
    """
    from tqdm import tqdm

    from auralign.data.audiovisual import read_image_captions

    start = time.perf_counter()
    items = read_image_captions(manifest)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "log.jsonl").open("w", encoding="utf-8")

    def log_line(record: dict[str, Any]) -> None:
        record["seconds"] = round(time.perf_counter() - start, 1)
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()

    llava = build_mini_llava(seed)
    pixels = _load_images(llava, [it.image for it in items])
    llava.vision_tower.requires_grad_(True)
    metas = [it.meta for it in items]
    if vision_steps and all(_words(m) for m in metas):
        head_, names, target = _pretrain_vision(llava, pixels, metas, vision_steps, seed, log_line)
        _init_projector(llava, head_, names, pixels, target)
    llava.projector.requires_grad_(True)
    # trained with llava_v1's system prompt, as the shipped captioner was (DALI's stages train with vicuna_v1's)
    captioner = DALICaptioner(llava, prefix_length=0, train_system=LLAVA_V1_SYSTEM)
    head = HeadCache(captioner)
    opt = torch.optim.AdamW(
        [
            {"params": llava.projector.parameters(), "lr": lr},
            {"params": llava.vision_tower.parameters(), "lr": lr / 5},
        ],
        weight_decay=0.0,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [lr, lr / 5], total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed + 1)
    bar = tqdm(range(1, steps + 1), desc="mini captioner", disable=not progress)
    ema = None
    for step in bar:
        idx = torch.randint(len(items), (batch_size,), generator=gen).tolist()
        prompts = [PROMPTS[int(j)] for j in torch.randint(len(PROMPTS), (batch_size,), generator=gen)]
        tokens = vision_tokens(llava, pixels[idx])
        batch = captioner.build_inputs(tokens, answers=[items[i].caption for i in idx], prompts=prompts)
        loss = head.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.9 * ema + 0.1 * loss.item()
        bar.set_postfix(loss=f"{ema:.3f}")
        log_line({"stage": "caption", "step": step, "loss": round(loss.item(), 4), "ema": round(ema, 4)})
    log_file.close()
    info = {
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "vision_steps": vision_steps,
        "lr": lr,
        "train_images": len(items),
        "final_loss_ema": round(ema or 0.0, 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
        "prompts": list(PROMPTS),
    }
    llava.requires_grad_(False)
    save_mini_captioner(llava, out, info)
    return info


@torch.no_grad()
def caption_images(
    llava: FrozenLlava, paths: list[Path], prompt: str = PROMPTS[0], max_new_tokens: int = 32
) -> list[str]:
    """Greedy visual captions of image files (a quick look at what the captioner learned)."""
    captioner = DALICaptioner(llava, prefix_length=0)
    tokens = llava.image_tokens(_load_images(llava, paths))
    return captioner.generate(
        tokens, prompts=[prompt] * len(paths), options=GenerationOptions(max_new_tokens=max_new_tokens)
    )


def score_captions(
    llava: FrozenLlava, manifest: str | os.PathLike, limit: int = 64, batch_size: int = 16
) -> dict[str, Any]:
    """Greedy captions of a captioner manifest's first `limit` images against their visual captions: exact
    match, and recall / precision of the things named (every look's noun phrase, e.g. "a dog")."""
    from auralign.data.audiovisual import read_image_captions
    from auralign.data.mini.av import DISTRACTORS, LOOKS

    items = read_image_captions(manifest)[:limit]
    nouns = [look.noun for look in [*LOOKS.values(), *DISTRACTORS.values()]]
    preds: list[str] = []
    for i in range(0, len(items), batch_size):
        preds += caption_images(llava, [it.image for it in items[i : i + batch_size]])
    hits = named = wanted = exact = 0
    for it, pred in zip(items, preds, strict=True):
        truth = {n for n in nouns if n in it.caption}
        said = {n for n in nouns if n in pred}
        hits, named, wanted = hits + len(truth & said), named + len(said), wanted + len(truth)
        exact += pred.strip().rstrip(".").lower() == it.caption.lower()
    return {
        "images": len(items),
        "exact": round(exact / max(1, len(items)), 3),
        "object_recall": round(hits / max(1, wanted), 3),
        "object_precision": round(hits / max(1, named), 3),
        "samples": [
            {"image": it.image.name, "caption": it.caption, "predicted": p}
            for it, p in zip(items, preds, strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Train a mini captioner on a captioner manifest and save it (default: the shipped artifact's folder)."""
    parser = argparse.ArgumentParser(
        prog="python -m auralign.experiments.mini_captioner", description=main.__doc__
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="captioner/train.jsonl of the audio-visual miniature")
    parser.add_argument("out", type=Path, nargs="?", default=DEFAULT_ARTIFACT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vision-steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)


def run(args: argparse.Namespace) -> int:
    info = train_mini_captioner(
        args.manifest,
        args.out,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        vision_steps=args.vision_steps,
        lr=args.lr,
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
