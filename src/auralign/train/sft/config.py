"""The `auralign train` config: one YAML per run, defaults equal to the ACC paper's (ms-swift 3.x) settings.

The paper trains with ms-swift (3.8, September 2025) and publishes only what differs from its defaults, so
every default here is ms-swift's, named by its ms-swift argument and where ms-swift (or the transformers
`TrainingArguments` it extends) defines it:

    lr 1e-4            --learning_rate: None, then 1e-4 for LoRA (swift/llm/argument/train_args.py)
    weight_decay 0.1   --weight_decay (swift/trainers/arguments.py, TrainArgumentsMixin)
    betas (0.9, 0.95)  --adam_beta1 0.9 (transformers TrainingArguments), --adam_beta2 0.95 (TrainArgumentsMixin)
    eps 1e-8           --adam_epsilon (transformers TrainingArguments)
    warmup_ratio 0     --warmup_ratio (transformers TrainingArguments; ms-swift keeps it)
    cosine to 0        --lr_scheduler_type cosine (TrainArgumentsMixin), as transformers'
                       get_cosine_schedule_with_warmup
    max_grad_norm 1    --max_grad_norm (transformers TrainingArguments)
    3 epochs           --num_train_epochs (transformers TrainingArguments)
    batch 1 x 16       --per_device_train_batch_size 1; --gradient_accumulation_steps None, then
                       ceil(16 / batch / GPUs) (TrainArgumentsMixin.__post_init__); here 16 whatever the GPUs
    LoRA 8 / 32 / 0.05 --lora_rank, --lora_alpha, --lora_dropout (swift/llm/argument/tuner_args.py)
"""

from typing import Literal

from pydantic import Field

from auralign.config import StrictModel
from auralign.models.factory import ModelConfig
from auralign.models.lora import LoraSettings


class Source(StrictModel):
    manifest: str
    #: per epoch, this source contributes round(weight x its size) samples (0.5 = half, 2 = twice)
    weight: float = Field(default=1.0, gt=0)


class Stage(StrictModel):
    """One training stage: AC, then ACC is two stages; a ratio mix is one stage with several sources."""

    name: str = Field(min_length=1)
    data: list[Source] = Field(min_length=1)
    epochs: float = Field(default=3.0, gt=0)  # ms-swift's default; the paper does not say
    max_steps: int | None = Field(default=None, gt=0)


class Optim(StrictModel):
    """AdamW and its schedule, each default ms-swift 3.x's (see the module docstring for the sources)."""

    lr: float = 1e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    #: linear warm-up over this fraction of a stage's steps, then cosine to min_lr_ratio x lr
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)


class TrainConfig(StrictModel):
    output_dir: str
    model: ModelConfig = ModelConfig()
    lora: LoraSettings = LoraSettings()
    #: continue from a trained adapter (e.g. the base model's) instead of a fresh LoRA; same r and alpha
    init_adapter: str | None = None
    stages: list[Stage] = Field(min_length=1)
    optim: Optim = Optim()
    batch_size: int = Field(default=1, gt=0)
    grad_accum: int = Field(default=16, gt=0)
    #: auto = bf16 autocast on GPU, fp32 on CPU
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    gradient_checkpointing: bool = False
    save_every: int = Field(default=100, gt=0)
    keep_checkpoints: int = Field(default=2, gt=0)
    log_every: int = Field(default=1, gt=0)
    tensorboard: bool = True
    seed: int = 0
    #: CPU threads for torch (None: leave torch's default)
    threads: int | None = None
