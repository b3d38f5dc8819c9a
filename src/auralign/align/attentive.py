"""DALI's attentive OT: cross-attention heads that weight the tokens entering the OT loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from auralign.align._checks import check_tokens
from auralign.align.transport import ot_exact, sinkhorn

__all__ = ["ENCODER_OBJECTIVES", "AttentiveOT", "AttentiveOTOutput", "EntropySchedule"]

#: the encoder's objective once the heads train (`AttentiveOT.encoder_loss`)
EncoderObjective = Literal["official", "ot_only"]
ENCODER_OBJECTIVES: tuple[str, ...] = get_args(EncoderObjective)


@dataclass(frozen=True)
class EntropySchedule:
    """lambda(epoch) of the attention heads' entropy bonus; ``None`` while the heads are frozen.

    DALI (official code): epoch 1 frozen, then 500, 400, 300, 200, then 100 for every later epoch.
    Epochs are 1-based, as in the official training loop.
    """

    frozen_epochs: int = 1
    values: Sequence[float] = (500.0, 400.0, 300.0, 200.0)
    final: float = 100.0

    def __call__(self, epoch: int) -> float | None:
        if not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"epoch is 1-based and must be an int >= 1, got {epoch!r}")
        k = epoch - self.frozen_epochs - 1
        if k < 0:
            return None
        return float(self.values[k]) if k < len(self.values) else float(self.final)

    def frozen(self, epoch: int) -> bool:
        return self(epoch) is None


@dataclass
class AttentiveOTOutput:
    """loss: mean OT cost (the encoder's loss); cost: (B,) per clip; a (B, N), b (B, M): the
    token weights used; entropy: (B,) H(a) + H(b)."""

    loss: Tensor
    cost: Tensor
    a: Tensor
    b: Tensor
    entropy: Tensor


class AttentiveOT(nn.Module):
    """OT between x (B, N, D) and y (B, M, D) with token weights from two cross-attention heads.

    a_i = (1 - mix) softmax_i(mean_channels(MHA(q=Wq_x x, k=Wk_y y, v=Wv_y y))_i / T) + mix / N, and
    b likewise with the roles swapped (DALI: 8 heads, T = 20, mix = 1/2, own q/k/v Linear
    pre-projections per head). The heads have their own optimiser and minimise
    ``attention_loss(out, epoch)`` = OT - lambda(epoch) (H(a) + H(b)), as the official code does, or with
    ``adversarial=True`` -OT - lambda (H(a) + H(b)), i.e. the heads maximise the OT cost. The encoder
    minimises ``encoder_loss(out, epoch)``: with ``encoder_objective="official"`` (the default) OT while the
    heads are frozen, then OT + (OT - lambda (H(a) + H(b))); with ``"ot_only"`` OT throughout.

    Why "official": the official loop zeroes the encoder's gradients, then backpropagates the heads' loss
    (GradScaler-scaled, ``retain_graph=True``, no ``inputs=``, so into the encoder too) and steps the heads,
    then backpropagates OT and steps the encoder: the encoder's gradient is r grad(OT - lambda H) + grad(OT),
    r the ratio of the heads' GradScaler scale to the encoder's. auralign trains in fp32 or under bf16
    autocast, neither with a GradScaler, so r = 1. (Under DataParallel the heads' step between the two
    backward passes does not change the second one: it runs on the replicas' copies of the weights.)
    Evaluation (``.eval()``) uses uniform weights, as the official validation does, unless
    ``uniform_in_eval=False``.

    Training step (both losses' gradients before either optimiser steps, each into its own parameters)::

        out = aot(audio_tokens, image_tokens)
        att = aot.attention_loss(out, epoch)
        aot.encoder_loss(out, epoch).backward(retain_graph=att is not None, inputs=encoder_params)
        if att is not None:
            att.backward(inputs=list(aot.parameters()))
        enc_opt.step(); enc_opt.zero_grad()
        if att is not None:
            att_opt.step(); att_opt.zero_grad()
    """

    def __init__(
        self,
        dim: int = 1024,
        *,
        num_heads: int = 8,
        temperature: float = 20.0,
        uniform_mix: float = 0.5,
        solver: Literal["exact", "sinkhorn"] = "exact",
        solver_kwargs: dict | None = None,
        schedule: EntropySchedule | None = None,
        adversarial: bool = False,
        encoder_objective: EncoderObjective = "official",
        uniform_in_eval: bool = True,
    ) -> None:
        super().__init__()
        if solver not in ("exact", "sinkhorn"):
            raise ValueError(f"solver must be 'exact' or 'sinkhorn', got {solver!r}")
        if encoder_objective not in ENCODER_OBJECTIVES:
            raise ValueError(
                f"encoder_objective must be one of {ENCODER_OBJECTIVES}, got {encoder_objective!r}"
            )
        if not 0 <= uniform_mix <= 1:
            raise ValueError(f"uniform_mix must be in [0, 1], got {uniform_mix}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.dim, self.temperature, self.uniform_mix = dim, float(temperature), float(uniform_mix)
        self.solver, self.solver_kwargs = solver, dict(solver_kwargs or {})
        self.schedule = schedule or EntropySchedule()
        self.adversarial, self.uniform_in_eval = adversarial, uniform_in_eval
        self.encoder_objective = encoder_objective
        self.attn_x = nn.MultiheadAttention(dim, num_heads, batch_first=True)  # weights over x tokens
        self.attn_y = nn.MultiheadAttention(dim, num_heads, batch_first=True)  # weights over y tokens
        self.q_x, self.k_y, self.v_y = (nn.Linear(dim, dim) for _ in range(3))
        self.q_y, self.k_x, self.v_x = (nn.Linear(dim, dim) for _ in range(3))

    def _head(self, attn, q, k, v, q_mask, k_mask) -> Tensor:
        h = attn(q, k, v, key_padding_mask=~k_mask, need_weights=False)[0]
        s = (h.float().mean(-1) / self.temperature).masked_fill(~q_mask, float("-inf"))
        uni = q_mask.float() / q_mask.sum(1, keepdim=True)
        return (1 - self.uniform_mix) * torch.softmax(s, 1) + self.uniform_mix * uni

    def weights(
        self, x: Tensor, y: Tensor, *, x_mask: Tensor | None = None, y_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Token weights a (B, N) and b (B, M), fp32, each summing to 1 over valid tokens."""
        x, y, x_mask, y_mask, _ = check_tokens(x, y, x_mask, y_mask)
        if x.shape[-1] != self.dim:
            raise ValueError(f"x and y must have D = {self.dim}; got x {tuple(x.shape)}, y {tuple(y.shape)}")
        a = self._head(self.attn_x, self.q_x(x), self.k_y(y), self.v_y(y), x_mask, y_mask)
        b = self._head(self.attn_y, self.q_y(y), self.k_x(x), self.v_x(x), y_mask, x_mask)
        return a, b

    def forward(
        self, x: Tensor, y: Tensor, *, x_mask: Tensor | None = None, y_mask: Tensor | None = None
    ) -> AttentiveOTOutput:
        x, y, x_mask, y_mask, _ = check_tokens(x, y, x_mask, y_mask)
        if x.shape[-1] != self.dim:
            raise ValueError(f"x and y must have D = {self.dim}; got x {tuple(x.shape)}, y {tuple(y.shape)}")
        if self.training or not self.uniform_in_eval:
            a, b = self.weights(x, y, x_mask=x_mask, y_mask=y_mask)
        else:
            a, b = x_mask.float() / x_mask.sum(1, keepdim=True), y_mask.float() / y_mask.sum(1, keepdim=True)
        loss_fn = ot_exact if self.solver == "exact" else sinkhorn
        cost = loss_fn(x, y, x_mask=x_mask, y_mask=y_mask, a=a, b=b, reduction="none", **self.solver_kwargs)
        entropy = -(torch.special.xlogy(a, a).sum(1) + torch.special.xlogy(b, b).sum(1))
        return AttentiveOTOutput(loss=cost.mean(), cost=cost, a=a, b=b, entropy=entropy)

    def attention_loss(self, out: AttentiveOTOutput, epoch: int) -> Tensor | None:
        """The heads' objective at ``epoch`` (1-based), or None while the schedule freezes them."""
        lam = self.schedule(epoch)
        if lam is None:
            return None
        ot_term = -out.loss if self.adversarial else out.loss
        return ot_term - lam * out.entropy.mean()

    def encoder_loss(self, out: AttentiveOTOutput, epoch: int) -> Tensor:
        """The encoder's objective at ``epoch`` (1-based): OT, plus the official code's heads' loss
        OT - lambda (H(a) + H(b)) once the heads train, unless ``encoder_objective="ot_only"``."""
        lam = self.schedule(epoch)
        if lam is None or self.encoder_objective == "ot_only":
            return out.loss
        return out.loss + (out.loss - lam * out.entropy.mean())
