"""Training items and queries, and their encoding exactly as stable-audio-tools trains.

An item is z = (audio, caption, timing). Encoding mirrors `DiffusionCondTrainingWrapper`
(training/diffusion.py) and `PadCrop_Normalized_T` (data/utils.py): the audio is zero-padded to
the model's `sample_size`, passed through the pretransform, and the sample-level padding mask is
brought to latent resolution with nearest interpolation. The conditioning (prompt, seconds_start,
seconds_total) is computed once per item (and window, for a track longer than the model's
window: `window_offsets`) by the model's own conditioner and cached: the conditioner is not
among the unlearned weights, so it is the same under theta0 and theta'.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torch.nn.functional as F

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.memory import return_freed_memory
from attribution.engine.randomness import keyed_generator, stable_seed

SILENCE_PEAK = 1e-5  # peak |amplitude| below which audio counts as silent


@dataclass(eq=False)
class AudioItem:
    """z = (x, c): audio (C, T) float at the model's sample rate, caption and timing."""

    item_id: str
    audio: torch.Tensor  # (C, T)
    prompt: str
    seconds_start: float
    seconds_total: float


@dataclass(eq=False)
class TrainingItem(AudioItem):
    """One training track z_i (training-set position = its index in `TrainingSet.items`).

    Its audio is either held (built in memory) or read from its file each time it is used
    (`loader`, set by `load_training_set`): a training set of N tracks keeps no audio in
    memory, and once its encodings are stored nothing reads the files again.
    """

    metadata: dict[str, Any] = field(default_factory=dict)  # isrc, sha256, ... (not used)
    loader: Callable[[], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def audio(self) -> torch.Tensor:  # (C, T)
        if self._audio is None:
            assert self.loader is not None, "a training item needs audio or a loader"
            return self.loader()
        return self._audio

    @audio.setter
    def audio(self, value: torch.Tensor | None) -> None:
        self._audio = value


@dataclass(eq=False)
class QueryItem(AudioItem):
    """A generated sample z_hat (audio + prompt + duration), attributed to the training set."""


@dataclass(eq=False)
class TrainingSet:
    items: list[TrainingItem]
    manifest_sha256: str

    def __post_init__(self) -> None:
        if not self.items:
            raise EngineError("The training set is empty: there is nothing to attribute to.")
        ids = [item.item_id for item in self.items]
        if len(set(ids)) != len(ids):
            raise EngineError("Training item ids are not unique.", field="training_manifest")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    @classmethod
    def from_items(cls, items: list[TrainingItem]) -> TrainingSet:
        """A training set without a manifest file; its hash covers ids, captions, timing, audio."""
        digest = hashlib.sha256()
        for item in items:
            digest.update(
                json.dumps(
                    [item.item_id, item.prompt, item.seconds_start, item.seconds_total]
                ).encode()
            )
            digest.update(item.audio.detach().cpu().contiguous().numpy().tobytes())
        return cls(items=list(items), manifest_sha256=digest.hexdigest())


@dataclass(eq=False)
class EncodedItem:
    """An item as the diffusion model sees it during training.

    A training track longer than the model's window is seen through several windows
    (`window_offsets`): this item is the first, `more_windows` the others, and the T draws of
    any of its losses are split into `window_count` consecutive blocks, one per window
    (`window_of`)."""

    item_id: str
    latents: torch.Tensor  # (C_lat, L) pretransform output, scaled as in training
    padding_mask: torch.Tensor  # (L,) bool, True on latent frames that hold real audio
    conditioning: dict[str, Any]  # model.conditioner([metadata]) output, batch of 1
    seconds_total: float
    more_windows: tuple[EncodedItem, ...] = ()

    @property
    def window_count(self) -> int:
        return 1 + len(self.more_windows)

    def window_of(self, draw_index: int, timesteps: int) -> int:
        """The window draw `draw_index` of `timesteps` draws is taken on: draws in consecutive
        blocks, so each window's timesteps are a run of the (stream, item)'s Sobol sequence
        (its first 2^m points, and every aligned run of 2^m, put one t in each of 2^m equal
        intervals; dealing draws out k mod W would give a window only every W-th point, which
        for W a power of two leaves it half or less of [0, 1)). With fewer draws than windows,
        the last windows get none."""
        return min(self.window_count - 1, draw_index * self.window_count // timesteps)

    def window(self, position: int) -> EncodedItem:
        """Window `position` (0: this item)."""
        return self if position == 0 else self.more_windows[position - 1]


def check_audio(audio: torch.Tensor, *, what: str) -> None:
    """Refuse NaN/inf, empty and silent audio with a readable message."""
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise EngineError(f"{what} has no audio samples (expected a (channels, samples) array).")
    if not bool(torch.isfinite(audio).all()):
        raise EngineError(f"{what} contains NaN or infinite samples.", field="audio")
    if float(audio.abs().max()) < SILENCE_PEAK:
        raise EngineError(f"{what} is silent (peak amplitude below {SILENCE_PEAK}).", field="audio")


def conform_audio(
    audio: np.ndarray | torch.Tensor, sample_rate: int, model: EngineModel
) -> torch.Tensor:
    """(C, T) or (T,) audio at any rate -> float32 (C_model, T') at the model's sample rate."""
    audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if audio.ndim == 1:
        audio = audio[None]  # (1, T)
    if sample_rate != model.sample_rate:
        import torchaudio.functional as AF

        audio = AF.resample(audio, sample_rate, model.sample_rate)
    channels = model.audio_channels
    if audio.shape[0] != channels:
        if channels == 1:
            audio = audio.mean(dim=0, keepdim=True)  # (1, T) mono downmix
        elif audio.shape[0] == 1:
            audio = audio.expand(channels, -1).clone()  # (C, T) mono upmix
        else:
            raise EngineError(
                f"Audio has {audio.shape[0]} channels; the model takes {channels}.", field="audio"
            )
    return audio.contiguous()


def read_audio(path: Path, model: EngineModel) -> torch.Tensor:
    """Read a file with soundfile -> (C, T) float32 at the model's rate and channel count."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (OSError, RuntimeError) as exc:
        raise EngineError(f"Cannot read audio file {path}: {exc}", field="audio") from exc
    return conform_audio(data.T, rate, model)  # (C, T)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _training_audio(
    path: Path, model: EngineModel, track: dict[str, Any], *, verify: bool
) -> torch.Tensor:
    """A training track's audio from its file, checked (the manifest's SHA-256 when `verify`,
    finite and not silent): (C, T) at the model's rate."""
    if verify and track.get("sha256") and file_sha256(path) != track["sha256"]:
        raise EngineError(
            f"Training track {track.get('track_id')}: {path} does not match the "
            "manifest's sha256 (the audio changed after training)."
        )
    audio = read_audio(path, model)
    check_audio(audio, what=f"Training track {track.get('track_id')}")
    return audio


def load_training_set(
    manifest_path: str | Path, model: EngineModel, *, verify_audio_sha256: bool = True
) -> TrainingSet:
    """Training items from `training_manifest.json`, in list order (= training-set position).

    Every file must exist; its samples are read, and checked against the manifest's SHA-256
    (with `verify_audio_sha256`), only when the item's audio is used (`TrainingItem.loader`:
    encoding, once per checkpoint), so loading costs no audio reads whatever N is."""
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise EngineError(f"Training manifest {manifest_path} does not exist.", field="manifest")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EngineError(f"Training manifest {manifest_path} is not valid JSON: {exc}") from exc
    tracks = manifest.get("tracks") or []
    if not tracks:
        raise EngineError(f"The training manifest {manifest_path} lists no tracks.")
    items = []
    for position, track in enumerate(tracks):
        audio_path = Path(track["audio_path"])
        if not audio_path.is_absolute():
            audio_path = manifest_path.parent / audio_path
        if not audio_path.is_file():
            raise EngineError(f"Training track {track.get('track_id')}: no file {audio_path}.")
        if "seconds_total" in track:
            seconds_total = float(track["seconds_total"])
        else:  # the file's header, without reading the samples
            seconds_total = float(math.ceil(soundfile.info(str(audio_path)).duration))
        items.append(
            TrainingItem(
                item_id=str(track.get("track_id", position)),
                audio=None,
                prompt=str(track.get("caption", "")),
                seconds_start=float(track.get("seconds_start", 0)),
                seconds_total=seconds_total,
                metadata={k: v for k, v in track.items() if k not in ("caption",)},
                loader=functools.partial(
                    _training_audio, audio_path, model, track, verify=verify_audio_sha256
                ),
            )
        )
    return TrainingSet(items=items, manifest_sha256=hashlib.sha256(raw).hexdigest())


def make_query(
    audio: np.ndarray | torch.Tensor,
    sample_rate: int,
    prompt: str,
    model: EngineModel,
    *,
    seconds_start: float = 0.0,
    seconds_total: float | None = None,
    item_id: str | None = None,
) -> QueryItem:
    """A generated sample as a query z_hat; seconds_total defaults to ceil(duration), as in
    training."""
    conformed = conform_audio(audio, sample_rate, model)  # (C, T)
    check_audio(conformed, what="The query")
    if conformed.shape[-1] > model.sample_size:
        raise EngineError(
            f"The query is {conformed.shape[-1] / model.sample_rate:.2f} s long; the model "
            f"takes at most {model.sample_size / model.sample_rate:.2f} s.",
            field="audio",
        )
    if seconds_total is None:
        seconds_total = float(math.ceil(conformed.shape[-1] / model.sample_rate))
    if item_id is None:
        item_id = "query:" + hashlib.sha256(conformed.numpy().tobytes()).hexdigest()[:16]
    return QueryItem(item_id, conformed, prompt, float(seconds_start), float(seconds_total))


def query_from_training_item(item: TrainingItem) -> QueryItem:
    """Train-to-Train (Sec. 3.2): a training item unlearned as if it were a generation."""
    return QueryItem(
        f"query:{item.item_id}", item.audio, item.prompt, item.seconds_start, item.seconds_total
    )


def window_offsets(cfg: EngineConfig, item_id: str, length: int, window: int) -> list[int]:
    """Start samples of the windows a training track of `length` samples is scored on.

    Training crops a long track at a uniformly random offset; the engine averages its losses
    over up to cfg.max_windows windows instead, one in each of as many equal strata of the
    possible offsets [0, length - window], at a keyed uniform position inside its stratum (the
    same in every process). A track that fits the window, or cfg.max_windows = 1, gives [0]:
    the first window only."""
    if length <= window or cfg.max_windows <= 1:
        return [0]
    count = min(cfg.max_windows, math.ceil(length / window))
    span = length - window
    offsets = []
    for index in range(count):
        u = float(torch.rand(1, generator=keyed_generator(cfg.seed, "window", item_id, index)))
        offsets.append(min(span, int((index + u) / count * span)))
    return offsets


@torch.no_grad()
def encode_item(model: EngineModel, item: AudioItem, cfg: EngineConfig) -> EncodedItem:
    """Pad to sample_size, encode through the pretransform, padding mask at latent resolution;
    a training track longer than the window gets one such encoding per `window_offsets`."""
    check_audio(item.audio, what=f"Item {item.item_id}")
    audio = item.audio.to(torch.float32)  # (C, T)
    if audio.shape[0] != model.audio_channels:
        raise EngineError(
            f"Item {item.item_id} has {audio.shape[0]} channels; the model takes "
            f"{model.audio_channels}.",
            field="audio",
        )
    n = audio.shape[-1]
    if n > model.sample_size and isinstance(item, QueryItem):
        raise EngineError(
            f"The query is {n / model.sample_rate:.2f} s long; the model takes at most "
            f"{model.sample_size / model.sample_rate:.2f} s.",
            field="audio",
        )
    size = model.sample_size
    windows = []
    for index, offset in enumerate(window_offsets(cfg, item.item_id, n, size)):
        # as training's PadCrop: the crop's start, in whole seconds, from the item's own start
        start = item.seconds_start + math.floor(offset / model.sample_rate)
        piece = audio[:, offset : offset + size]  # (C, <= S)
        windows.append(_encode_window(model, item, cfg, piece, float(start), index))
    return dataclasses.replace(windows[0], more_windows=tuple(windows[1:]))


def _encode_window(
    model: EngineModel,
    item: AudioItem,
    cfg: EngineConfig,
    audio: torch.Tensor,
    seconds_start: float,
    window_index: int,
) -> EncodedItem:
    module = model.module
    n = audio.shape[-1]  # (C, n), n <= S
    chunk = audio.new_zeros(audio.shape[0], model.sample_size)  # (C, S) zero-padded as in PadCrop
    chunk[:, :n] = audio
    sample_mask = torch.zeros(model.sample_size)  # (S,)
    sample_mask[:n] = 1
    chunk = chunk.to(cfg.device)[None]  # (1, C, S)
    pretransform = getattr(module, "pretransform", None)
    if pretransform is not None:
        # A VAE bottleneck samples; seed it per item (and window) so latents are reproducible.
        devices = [torch.device(cfg.device)] if torch.device(cfg.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(stable_seed(cfg.seed, "encode", item.item_id, window_index))
            latents = pretransform.encode(chunk)  # (1, C_lat, L)
    else:
        latents = chunk  # (1, C, S)
    length = latents.shape[-1]
    padding_mask = F.interpolate(sample_mask[None, None], size=length, mode="nearest")[
        0, 0
    ].bool()  # (L,)
    metadata = {
        "prompt": item.prompt,
        "seconds_start": seconds_start,
        "seconds_total": item.seconds_total,
        "padding_mask": [sample_mask.bool()],
    }
    conditioning = module.conditioner([metadata], cfg.device)
    del chunk
    return_freed_memory()  # the pretransform's activations over the whole window
    return EncodedItem(
        item_id=item.item_id,
        latents=latents[0].detach().float(),  # (C_lat, L)
        padding_mask=padding_mask.to(cfg.device),
        conditioning=conditioning,
        seconds_total=item.seconds_total,
    )


def encode_items(
    model: EngineModel, items: list[AudioItem], cfg: EngineConfig, progress=None
) -> list[EncodedItem]:
    encoded = []
    for index, item in enumerate(items):
        encoded.append(encode_item(model, item, cfg))
        if progress is not None:
            progress("encode", index + 1, len(items))
    return encoded
