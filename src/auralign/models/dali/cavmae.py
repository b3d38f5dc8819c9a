"""The CAV-MAE audio branch (Gong et al., ICLR 2023) as DALI uses it, and a loader for the official checkpoints.

Normalised fbank (B, 1024 frames, 128 bins) -> 16x16 patches of the (1, 128 freq, 1024 time) image: an 8 x 64
grid, 512 tokens, frequency-major -> + 2-D positions `pos_embed_a` (sin-cos at start, a parameter: it trains in
DALI's alignment, as in the official code) + a learned audio modality vector -> 11 audio-specific ViT blocks
(`blocks_a`, their plain norms) -> the shared block (`blocks_u`, applied with its audio norms
`norm1_a`/`norm2_a`) -> `norm_a`: (B, 512, 768), what the official `forward_audio_feat` returns.

Parameter names follow the official model exactly (a subset of its state dict), so an official checkpoint loads
after stripping DataParallel's `module.`; the visual branch, the decoder and the norms other modalities use are
ignored.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from auralign.errors import ConfigError


@dataclass(frozen=True)
class CAVMAEConfig:
    """Sizes of the audio branch; the defaults are CAV-MAE base (and Scale++), the one DALI uses."""

    dim: int = 768
    heads: int = 12
    depth_a: int = 11  # modality-specific blocks
    depth_u: int = 1  # shared blocks (12 - modality_specific_depth in the official code)
    mlp_ratio: float = 4.0
    patch: int = 16
    freq_bins: int = 128
    frames: int = 1024

    @property
    def grid(self) -> tuple[int, int]:
        return self.freq_bins // self.patch, self.frames // self.patch

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]


CAVMAE_BASE = CAVMAEConfig()


def sincos_2d(dim: int, rows: int, cols: int) -> torch.Tensor:
    """Fixed positions (rows * cols, dim) of a row-major grid, MAE-style, in CAV-MAE's layout.

    Token k = r * cols + c gets [sin(c w), cos(c w), sin(r w), cos(r w)], each dim/4 wide, w = 10000^(-i/(dim/4)):
    the first half encodes the column (time for audio), the second half the row (frequency).
    """
    if dim % 4:
        raise ValueError(f"sin-cos positions need a width divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
    r, c = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
    enc = lambda p: np.concatenate([np.sin(p.reshape(-1, 1) * omega), np.cos(p.reshape(-1, 1) * omega)], 1)  # noqa: E731
    return torch.from_numpy(np.concatenate([enc(c), enc(r)], axis=1)).float()


class Attention(nn.Module):
    """timm's ViT attention: one qkv projection, scaled dot product, output projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block. The official block carries three norm pairs (joint, `_a`, `_v`) and picks one per call;
    ours holds only the pair its stream uses, under the official name (`norm1`, or `norm1_a` in the shared block)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, norm_suffix: str = "") -> None:
        super().__init__()
        self.names = f"norm1{norm_suffix}", f"norm2{norm_suffix}"
        for name in self.names:
            self.add_module(name, nn.LayerNorm(dim))  # torch's default eps, as CAV-MAE's nn.LayerNorm
        self.attn = Attention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm1, norm2 = (getattr(self, n) for n in self.names)
        x = x + self.attn(norm1(x))
        return x + self.mlp(norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, 1, F, T) -> (B, F/p * T/p, dim), frequency-major


class CAVMAEAudio(nn.Module):
    """CAV-MAE's audio encoder: fbank (B, frames, freq_bins) -> tokens (B, num_tokens, dim)."""

    def __init__(self, config: CAVMAEConfig = CAVMAE_BASE) -> None:
        super().__init__()
        c = self.config = config
        if c.freq_bins % c.patch or c.frames % c.patch:
            raise ValueError(
                f"{c.freq_bins} bins x {c.frames} frames do not tile into {c.patch}x{c.patch} patches"
            )
        self.patch_embed_a = PatchEmbed(c.patch, c.dim)
        # fixed sin-cos values at start (CAV-MAE pretrained with tr_pos=False), but a parameter: the official
        # DALI alignment calls requires_grad_(True) on the whole model, so it trains with the audio branch
        self.pos_embed_a = nn.Parameter(sincos_2d(c.dim, *c.grid)[None])
        self.modality_a = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.blocks_a = nn.ModuleList([Block(c.dim, c.heads, c.mlp_ratio) for _ in range(c.depth_a)])
        self.blocks_u = nn.ModuleList([Block(c.dim, c.heads, c.mlp_ratio, "_a") for _ in range(c.depth_u)])
        self.norm_a = nn.LayerNorm(c.dim)

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        c = self.config
        if fbank.ndim != 3 or fbank.shape[1:] != (c.frames, c.freq_bins):
            raise ValueError(
                f"CAV-MAE expects fbank of shape (batch, {c.frames} frames, {c.freq_bins} bins), "
                f"got {tuple(fbank.shape)} (see auralign.audio.fbank.cavmae_fbank)"
            )
        x = self.patch_embed_a(fbank.transpose(1, 2).unsqueeze(1).to(self.modality_a.dtype))
        x = x + self.pos_embed_a + self.modality_a
        for block in [*self.blocks_a, *self.blocks_u]:
            x = block(x)
        return self.norm_a(x)


AUDIO_KEYS = ("patch_embed_a.", "pos_embed_a", "modality_a", "blocks_a.", "blocks_u.", "norm_a.")
ADAPTER_KEY = "proj."  # DALI's Linear(768, 1024) lives on the CAV-MAE module as `proj`
OTHER_NORMS = re.compile(r"^blocks_[au]\.\d+\.norm[12](_[av])?\.")  # the norm pairs our blocks leave out


class LoadResult(NamedTuple):
    """What a checkpoint load left out: `missing` (ours, not in the file) and `unexpected` (audio-branch keys in
    the file we have no place for). Unpacks as (missing, unexpected)."""

    missing: list[str]
    unexpected: list[str]

    def __str__(self) -> str:
        show = lambda keys: ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")  # noqa: E731
        return f"missing: {show(self.missing) or 'none'}; unexpected: {show(self.unexpected) or 'none'}"


def read_state_dict(source: str | os.PathLike | dict[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """A state dict and a name for messages, from a dict, a `.pth`/`.pt`/`.bin` (torch.load) or `.safetensors` file."""
    if isinstance(source, dict):
        state, name = source, "<state dict>"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such checkpoint file")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated download, a pickle of a whole model, another format
            raise ConfigError(f"{path}: cannot read a state dict ({type(e).__name__}: {e})") from e
    for wrapper in ("state_dict", "model", "module"):  # trainer checkpoints nest the weights one level down
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ConfigError(f"{name}: expected a state dict (name -> tensor), got {type(state).__name__}")
    return {re.sub(r"^(module\.)+", "", k): v for k, v in state.items() if torch.is_tensor(v)}, name


def load_cavmae_checkpoint(
    model: CAVMAEAudio, source: str | os.PathLike | dict[str, Any], adapter: nn.Linear | None = None
) -> LoadResult:
    """Load the audio branch of an official CAV-MAE (or DALI) checkpoint into `model`, in place.

    Keeps `patch_embed_a`, `pos_embed_a`, `modality_a`, `blocks_a`, `blocks_u`, `norm_a` after stripping
    `module.`; with `adapter`, also DALI's `proj` (the Linear(768, 1024) into CLIP's token space), reported missing
    when the file has none (a plain CAV-MAE checkpoint). Raises ConfigError naming the file when it holds no
    audio-branch weights or a tensor's shape disagrees with the model's config.
    """
    state, name = read_state_dict(source)
    audio = {k: v for k, v in state.items() if k.startswith(AUDIO_KEYS)}
    if not audio:
        seen = ", ".join(list(state)[:5]) or "nothing"
        raise ConfigError(
            f"{name}: no CAV-MAE audio-branch weights (expected keys like 'module.blocks_a.0.attn.qkv.weight', "
            f"'module.patch_embed_a.proj.weight'); found {seen}"
        )
    targets: dict[str, tuple[nn.Module, dict[str, torch.Tensor]]] = {"": (model, audio)}
    if adapter is not None:
        targets[ADAPTER_KEY] = (
            adapter,
            {k[len(ADAPTER_KEY) :]: v for k, v in state.items() if k.startswith(ADAPTER_KEY)},
        )
    missing: list[str] = []
    for prefix, (module, weights) in targets.items():
        own = module.state_dict()
        bad = [
            f"{prefix}{k}: file {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
            for k, v in own.items()
            if k in weights and weights[k].shape != v.shape
        ]
        if bad:
            more = f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
            raise ConfigError(
                f"{name}: checkpoint does not fit the model config: " + "; ".join(bad[:4]) + more
            )
        missing += [prefix + k for k in own if k not in weights]
        module.load_state_dict({k: weights[k] for k in own if k in weights}, strict=False)
    own_keys = model.state_dict().keys()
    unexpected = [k for k in audio if k not in own_keys and not OTHER_NORMS.match(k)]
    return LoadResult(missing, unexpected)
