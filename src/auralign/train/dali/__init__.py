"""DALI's stages as recipes (Malard et al., NeurIPS 2024), each a plain function of its config, one file each:

    prefix.prefix_tune  (frame, audio caption) pairs -> prefix.safetensors                  only the prefix trains
    align.align         (frame, audio) pairs -> audio.safetensors (+ prefix)                audio branch + adapter
    distill.distill     pseudo-captions of frame + audio + prefix -> audio_projector.safetensors (+ audio, prefix)
    caption.caption     audio | audio-visual | image -> predictions JSONL, as `auralign caption` writes it

over a small library: `config` (the stage configs), `build` (model builders, loader registries), `data`
(audio-visual samples, frame tokens, augmentation, batches), `folders` (what a stage folder holds and how the
next stage reads it), `lm_training` (the LM-loss loop of prefix and distill), `generation` (resumable
captioning, shared by distill and caption), and `auralign.train.common` (the run-folder protocol).

A missing audio or frame file is an error naming it, checked before any training. The names below are what
other rooms import (from `auralign.train.dali`, not from its modules).
"""

from auralign.train.dali.align import align, align_step, make_aligner
from auralign.train.dali.build import build_audio, build_llava, register_audio_loader, register_llava_loader
from auralign.train.dali.caption import caption, mean_tokens
from auralign.train.dali.data import AVDataset, read_av_samples
from auralign.train.dali.distill import distill
from auralign.train.dali.folders import load_captioner
from auralign.train.dali.prefix import prefix_tune

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
