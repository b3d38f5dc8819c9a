"""DALI's stages (prefix, align, distill, caption) as recipes; the names other rooms import."""

from auralign.train.dali.stages import (
    AVDataset,
    align,
    align_step,
    build_audio,
    build_llava,
    caption,
    distill,
    load_captioner,
    make_aligner,
    mean_tokens,
    prefix_tune,
    read_av_samples,
    register_audio_loader,
    register_llava_loader,
)

__all__ = [
    "AVDataset",
    "align",
    "align_step",
    "build_audio",
    "build_llava",
    "caption",
    "distill",
    "load_captioner",
    "make_aligner",
    "mean_tokens",
    "prefix_tune",
    "read_av_samples",
    "register_audio_loader",
    "register_llava_loader",
]
