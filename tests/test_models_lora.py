"""FastDropout: the CPU LoRA dropout keeps dropout's rate, scale and gradient."""

import torch

from auralign.models.lora import FastDropout


def test_fast_dropout_rate_scale_and_gradient() -> None:
    torch.manual_seed(0)
    drop = FastDropout(0.05).train()
    x = torch.ones(2000, 1000, requires_grad=True)
    y = drop(x)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - 0.05) < 0.002  # 2e6 draws: the standard error is 1.5e-4
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.95))
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)
    assert torch.equal(drop.eval()(x), x)
    assert not torch.equal(FastDropout(0.05).train()(x), y)  # a fresh mask per call
