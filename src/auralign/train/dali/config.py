"""Configs of the DALI stages (`auralign dali prefix|align|distill|caption`), defaults = the paper's settings.

Each stage names the output folder of the one before it (`prefix_dir`, `align_dir`, `distill_dir`) and may
leave out `model:`, which it then takes from that folder's `config.json`: one model section, written once in
the prefix stage's config, flows through the chain. Relative paths are relative to the working directory.
"""

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from auralign.align.attentive import EncoderObjective
from auralign.align.loss import ATTENTIVE_OT, method_names
from auralign.config import StrictModel
from auralign.models.base import GenerationOptions
from auralign.models.dali.captioner import DALI_PROMPT
from auralign.models.encoders.base import Channel

Dtype = Literal["auto", "float32", "bfloat16", "float16"]
Precision = Literal["auto", "fp32", "bf16"]


class LlavaSource(StrictModel):
    """The frozen image captioner: a transformers LLaVA checkpoint, or a function that builds one."""

    #: hub id or local folder in the transformers layout, loaded by FrozenLlava.from_pretrained
    path: str | None = "llava-hf/llava-1.5-7b-hf"
    #: instead of `path` (wins over it): a registered name ("tiny") or "package.module:function" returning a
    #: FrozenLlava, called with `loader_args`
    loader: str | None = None
    loader_args: dict[str, Any] = Field(default_factory=dict)
    #: auto = bfloat16 on GPU, float32 on CPU (applies to `path`; a loader picks its own)
    dtype: Dtype = "auto"

    @model_validator(mode="after")
    def _one_source(self) -> "LlavaSource":
        if self.loader is None and not self.path:
            raise ValueError("give either path (a LLaVA checkpoint) or loader")
        return self


class CAVMAESizes(StrictModel):
    """CAV-MAE audio-branch sizes; the defaults are CAV-MAE base / Scale++ (what DALI uses)."""

    dim: int = 768
    heads: int = 12
    depth_a: int = 11
    depth_u: int = 1


class AudioSource(StrictModel):
    """The audio tokenizer: a backbone plus the trainable Linear(dim, 1024) adapter into CLIP's token space."""

    #: cavmae: CAV-MAE's audio branch (+ `checkpoint`); transformers: an AST/Whisper encoder at `path`;
    #: loader: a registered name or "package.module:function" returning an AudioBackbone or AudioTokenizer
    kind: Literal["cavmae", "transformers", "loader"] = "cavmae"
    #: cavmae: an official CAV-MAE (or DALI) checkpoint; None starts from random weights
    checkpoint: str | None = None
    sizes: CAVMAESizes = CAVMAESizes()
    #: fbank normalisation: 1 as CAV-MAE and DALI, 2 as AST
    std_scale: float = 1.0
    #: a multichannel file's samples: its first channel (the official extraction's) or the channels' mean
    channel: Channel = "first"
    path: str | None = None
    loader: str | None = None
    loader_args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source_given(self) -> "AudioSource":
        if self.kind == "transformers" and not self.path:
            raise ValueError("kind 'transformers' needs path (an AST or Whisper folder or hub id)")
        if self.kind == "loader" and not self.loader:
            raise ValueError("kind 'loader' needs loader (a registered name or 'package.module:function')")
        return self


class DALIModel(StrictModel):
    llava: LlavaSource = LlavaSource()
    audio: AudioSource = AudioSource()
    prefix_length: int = Field(default=16, ge=0)
    #: after the modality tokens as in the official code; "before" as the paper's figure draws it
    prefix_position: Literal["after", "before"] = "after"
    prompt: str = DALI_PROMPT


class AVData(StrictModel):
    """An audio-visual JSONL manifest: {"id", "audio", "frames": [...], "caption"?, "references"?} a line."""

    manifest: str
    #: the one frame used per clip: the middle one (official pseudo-captioning and evaluation) or the first
    #: (the official alignment dataloader)
    frame: Literal["middle", "first"] = "middle"
    #: use only the first `limit` samples (None: all)
    limit: int | None = Field(default=None, gt=0)
    #: DataLoader workers decoding audio and frames (0: in the main process)
    num_workers: int = Field(default=0, ge=0)


#: DALI's decoding (the official code): sampling at temperature 0.2 with transformers' default top-k (50; the
#: official scripts leave it unset), no top-p, one beam; a section that sets `temperature: 0` decodes greedily.
#: Keys a `pseudo:` or `generation:` section leaves out take these.
DALI_DECODING: dict[str, Any] = {"temperature": 0.2, "top_p": None, "top_k": 50, "batch_size": 16}


def dali_decoding(section: Any, seed: Any, absent: dict[str, Any]) -> Any:
    """A `pseudo`/`generation` section on DALI's defaults (`absent`: the stage's defaults when the section is
    missing). `do_sample` follows the temperature unless given; batch k is seeded `seed` + k, `seed` being the
    stage's unless the section sets its own."""
    if isinstance(section, GenerationOptions) or not isinstance(section, dict | None):
        return section  # already built, or invalid: pydantic reports it
    merged = {**DALI_DECODING, **(absent if section is None else {}), "seed": seed, **(section or {})}
    if "do_sample" not in merged and isinstance(merged["temperature"], int | float):
        merged["do_sample"] = merged["temperature"] > 0
    return merged


class StageBase(StrictModel):
    output_dir: str
    seed: int = 0
    #: auto = cuda when available, else cpu; or "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    log_every: int = Field(default=1, gt=0)


class PrefixConfig(StageBase):
    """Stage 1a: learn the prefix on (frame, audio caption) pairs; everything else is frozen."""

    model: DALIModel = DALIModel()
    data: AVData
    num_pairs: int = Field(default=16, gt=0)
    epochs: int = Field(default=500, gt=0)
    batch_size: int = Field(default=16, gt=0)
    #: split each batch into micro-batches of this size, gradients accumulated (same step, less memory)
    micro_batch_size: int | None = Field(default=None, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    #: linear warm-up over this share of the steps, then cosine to 0 (official prefix_tuning.sh: 0.03)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)


class AttentionSettings(StrictModel):
    """Attentive OT's cross-attention heads: own optimiser, entropy bonus lambda(epoch)."""

    heads: int = 8
    temperature: float = 20.0
    uniform_mix: float = 0.5
    solver: Literal["exact", "sinkhorn"] = "exact"
    solver_options: dict[str, Any] = Field(default_factory=dict)
    lr: float = Field(default=1e-4, gt=0)
    betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = Field(default=5e-7, ge=0)
    #: lambda: epochs 1..frozen_epochs not updated, then `lambdas` one per epoch, then `final_lambda`
    frozen_epochs: int = Field(default=1, ge=0)
    lambdas: list[float] = Field(default_factory=lambda: [500.0, 400.0, 300.0, 200.0])
    final_lambda: float = 100.0
    #: heads maximise the OT cost instead of minimising it (the official code minimises)
    adversarial: bool = False
    #: the encoder's loss once the heads train: "official" OT + (OT - lambda H), what the official loop leaves
    #: in the encoder's gradients; "ot_only" OT (see AttentiveOT.encoder_loss)
    encoder_objective: EncoderObjective = "official"


class AlignConfig(StageBase):
    """Stage 1b: align the audio tokenizer's token distribution with CLIP's on audio-visual pairs."""

    #: the prefix stage's output_dir (its prefix is carried on to the next stages)
    prefix_dir: str
    model: DALIModel | None = None
    data: AVData
    #: a loss of `auralign.align.LOSSES` ("mmd", "ot_exact", "sinkhorn", "contrastive") or "attentive_ot"
    method: str = ATTENTIVE_OT
    #: keyword hyper-parameters of the loss function (e.g. sinkhorn's eps, contrastive's temperature)
    method_options: dict[str, Any] = Field(default_factory=dict)
    attention: AttentionSettings = AttentionSettings()
    #: train the whole audio backbone (DALI) or only the adapter into CLIP's token space
    train_backbone: bool = True
    epochs: int = Field(default=20, gt=0)
    batch_size: int = Field(default=256, gt=0)
    lr: float = Field(default=1e-4, gt=0)
    betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = Field(default=5e-7, ge=0)
    #: the lr is multiplied by lr_gamma after each of these (1-based) epochs; default: after epoch 10 and every
    #: 5 epochs after it, the official MultiStepLR(milestones=range(10, 1000, 5), gamma=0.5)
    lr_milestones: list[int] = Field(default_factory=lambda: list(range(10, 1000, 5)))
    lr_gamma: float = 0.5
    #: auto = bf16 autocast for the audio branch on GPU, fp32 on CPU
    precision: Precision = "auto"
    #: CAV-MAE's fbank augmentation (noise + time roll), seeded per (seed, epoch, clip); CAV-MAE inputs only
    augment: bool = True
    #: CLIP is frozen, so a frame's tokens can be computed once: kept in memory, on disk, or recomputed
    image_token_cache: Literal["none", "memory", "disk"] = "none"
    #: disk cache folder (default: output_dir/image_tokens); share it only between runs of one LLaVA
    cache_dir: str | None = None
    #: also checkpoint every this many steps within an epoch (always at each epoch's end)
    save_every: int | None = Field(default=None, gt=0)
    keep_checkpoints: int = Field(default=2, gt=0)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        # read at validation time, so a loss registered in LOSSES is accepted
        if method not in method_names():
            raise ValueError(f"unknown alignment method {method!r}; known: {', '.join(method_names())}")
        return method


class DistillConfig(StageBase):
    """Stage 2: pseudo-captions from frame + audio + prefix, then a projector copy fine-tuned on audio alone."""

    #: the align stage's output_dir
    align_dir: str
    model: DALIModel | None = None
    data: AVData
    #: decoding of the pseudo-captions (see DALI_DECODING); max_new_tokens 128 when the section is missing
    pseudo: GenerationOptions = GenerationOptions(**dali_decoding(None, 0, {"max_new_tokens": 128}))
    #: the prefix in the projector's training input (pseudo-captioning always uses it); the official
    #: audio_vis_distil.sh trains without it
    use_prefix: bool = False
    epochs: int = Field(default=1, gt=0)
    batch_size: int = Field(default=40, gt=0)
    #: split each batch into micro-batches of this size, gradients accumulated (same step, less memory)
    micro_batch_size: int | None = Field(default=None, gt=0)
    lr: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    precision: Precision = "auto"

    @model_validator(mode="before")
    @classmethod
    def _dali_pseudo(cls, data: Any) -> Any:
        if isinstance(data, dict):
            pseudo = dali_decoding(data.get("pseudo"), data.get("seed", 0), {"max_new_tokens": 128})
            data = {**data, "pseudo": pseudo}
        return data


class CaptionConfig(StrictModel):
    """Zero-shot captioning with a trained stage folder (distill's; align's works without the distilled
    projector; prefix's in image mode)."""

    distill_dir: str
    #: predictions JSONL, the format of `auralign caption` (scored by `auralign score`)
    output: str
    model: DALIModel | None = None
    data: AVData
    mode: Literal["audio", "audio-visual", "image"] = "audio"
    #: decoding (see DALI_DECODING)
    generation: GenerationOptions = GenerationOptions(**dali_decoding(None, 0, {}))
    #: None: as the official inference, no prefix for audio through a distilled projector, the prefix otherwise
    use_prefix: bool | None = None
    task: str = "caption"
    seed: int = 0
    device: str = "auto"

    @model_validator(mode="before")
    @classmethod
    def _dali_generation(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, "generation": dali_decoding(data.get("generation"), data.get("seed", 0), {})}
        return data
