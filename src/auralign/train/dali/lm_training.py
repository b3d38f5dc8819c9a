"""The LM-loss training loop of the prefix and distill stages: AdamW + warm-up/cosine over `cfg.epochs` of
seeded batches, micro-batches accumulated into one step, a log row every `cfg.log_every` steps. Both stages
are short, so neither checkpoints: an interrupted run starts again."""

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from auralign.train.common import progress_bar, training_log, warmup_cosine
from auralign.train.dali.config import DistillConfig, PrefixConfig
from auralign.train.dali.data import epoch_order


def train_lm_part(
    params: list[nn.Parameter],
    *,
    n: int,
    loss_of: Callable[[list[int]], torch.Tensor],
    cfg: PrefixConfig | DistillConfig,
    stage: str,
    out: Path,
    progress: bool,
) -> int:
    """Train `params` on the n samples; `loss_of(indices)` is a micro-batch's mean LM loss (micro-batches are
    weighted by their size). Returns the number of steps."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, cfg.warmup_ratio))
    micro = cfg.micro_batch_size or cfg.batch_size
    journal, step = training_log(out), 0
    with progress_bar(total, 0, f"dali {stage}", progress) as bar:
        for epoch in range(1, cfg.epochs + 1):
            for batch in epoch_order(n, cfg.seed, epoch, cfg.batch_size):
                loss = 0.0
                for i in range(0, len(batch), micro):
                    part = loss_of(batch[i : i + micro]) * (len(batch[i : i + micro]) / len(batch))
                    part.backward()
                    loss += part.item()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if step % cfg.log_every == 0:
                    lr = scheduler.get_last_lr()[0]
                    journal.append({"stage": stage, "step": step, "epoch": epoch, "loss": loss, "lr": lr})
    return step
