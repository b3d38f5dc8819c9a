"""The LM-loss training loop of the prefix and distill stages: AdamW + warm-up/cosine over `cfg.epochs` of
seeded batches, micro-batches accumulated into one step, a log row every `cfg.log_every` steps. Both stages
are short, so neither checkpoints: an interrupted run starts again.

A step's gradient is that of the mean LM loss over every answer token of its batch, however the batch is
split into micro-batches and processes: each micro-batch's token mean is weighed by its share of the batch's
answer tokens (counted up front from the captions, `answer_tokens`), and the processes' gradients are summed
before the step (`Processes.sum_grads`)."""

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from auralign.models.base import IGNORE
from auralign.models.dali.captioner import DALICaptioner
from auralign.train.common import progress_bar, training_log, warmup_cosine
from auralign.train.dali.config import DistillConfig, PrefixConfig
from auralign.train.dali.data import epoch_order
from auralign.train.dali.processes import Processes


def answer_tokens(captioner: DALICaptioner, captions: Sequence[str]) -> list[int]:
    """Each caption's count of labelled tokens as the captioner's LM loss averages over them (the caption's
    tokens and the end of sequence), from the tokenizer alone."""
    return [sum(t != IGNORE for t in captioner.text_ids(answer=c)[2]) for c in captions]


def train_lm_part(
    params: list[nn.Parameter],
    *,
    captioner: DALICaptioner,
    captions: Sequence[str],
    loss_of: Callable[[list[int]], torch.Tensor],
    cfg: PrefixConfig | DistillConfig,
    stage: str,
    out: Path,
    progress: bool,
    procs: Processes | None = None,
) -> int:
    """Train `params` on the samples whose answers are `captions`; `loss_of(indices)` is a micro-batch's mean
    LM loss over its answer tokens. Every process (`procs`, default this one alone) starts from the main one's
    `params` and trains on its share of every batch; the main one logs. Returns the number of steps."""
    procs = procs or Processes()
    procs.broadcast(params)
    tokens, n = answer_tokens(captioner, captions), len(captions)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, cfg.warmup_ratio))
    micro = cfg.micro_batch_size or cfg.batch_size
    journal, step = training_log(out) if procs.main else None, 0
    with progress_bar(total, 0, f"dali {stage}", progress and procs.main) as bar:
        for epoch in range(1, cfg.epochs + 1):
            for batch in epoch_order(n, cfg.seed, epoch, cfg.batch_size):
                count = sum(tokens[i] for i in batch)
                mine = procs.split(batch).indices
                loss = 0.0
                for i in range(0, len(mine), micro):
                    part = mine[i : i + micro]
                    weighed = loss_of(part) * (sum(tokens[j] for j in part) / count)
                    weighed.backward()
                    loss += weighed.item()
                procs.sum_grads(params)
                (loss,) = procs.sum([loss])
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if journal is not None and step % cfg.log_every == 0:
                    lr = scheduler.get_last_lr()[0]
                    journal.append({"stage": stage, "step": step, "epoch": epoch, "loss": loss, "lr": lr})
    return step
