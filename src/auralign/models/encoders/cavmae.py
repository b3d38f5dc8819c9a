"""CAV-MAE's audio branch as a backbone: its Kaldi fbank front end in `prepare`, the ViT (models/dali/cavmae.py)
in `forward`: waves -> (B, 1024 frames, 128 bins) -> (B, 512, 768)."""

from collections.abc import Sequence

import torch

from auralign.audio.fbank import cavmae_fbank
from auralign.models.base import Audio
from auralign.models.dali.cavmae import CAVMAE_BASE, CAVMAEAudio, CAVMAEConfig
from auralign.models.encoders.base import load_waves


class CAVMAEBackbone(CAVMAEAudio):
    def __init__(self, config: CAVMAEConfig = CAVMAE_BASE, std_scale: float = 1.0) -> None:
        super().__init__(config)
        self.std_scale = std_scale  # 1 as CAV-MAE and DALI normalise; 2 for AST's convention

    def prepare(self, waves: Sequence[Audio]) -> torch.Tensor:
        from auralign.audio import AudioError

        feats = []
        for wave, name in load_waves(waves):
            try:
                feats.append(
                    cavmae_fbank(
                        wave,
                        frames=self.config.frames,
                        num_mel_bins=self.config.freq_bins,
                        std_scale=self.std_scale,
                    )
                )
            except ValueError as e:
                raise AudioError(f"{name}: {e}") from e
        return torch.stack(feats)
