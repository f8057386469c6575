"""Audio ingestion checks: the file decodes, is neither silent nor too big or too long.

Pure functions over a file path (no Django models). Decoding uses ``soundfile``
(libsndfile: WAV, FLAC, OGG/Vorbis, AIFF...); torchaudio is not used for I/O.
"""

import hashlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import soundfile as sf

# A track whose loudest sample stays below -60 dBFS is treated as silence.
SILENCE_PEAK = 10 ** (-60 / 20)
_BLOCK_FRAMES = 65536
_HASH_CHUNK = 1024 * 1024


class AudioError(Exception):
    """The file cannot be used as a training track; ``code`` names the reason."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class AudioInfo:
    sha256: str
    size_bytes: int
    duration_seconds: Decimal  # rounded to milliseconds
    sample_rate: int
    channels: int
    frames: int
    format: str  # libsndfile's major format, e.g. "WAV", "FLAC", "OGG"
    peak: float | None  # largest absolute sample value, 0..1 (None: not decoded again)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def audio_inspect(path: Path, *, max_bytes: int, max_seconds: float) -> AudioInfo:
    """Check that ``path`` is a usable training track and measure it.

    Raises ``AudioError`` with code ``missing``, ``empty``, ``too_large``,
    ``undecodable``, ``too_long`` or ``silent``.
    """
    path = Path(path)
    try:
        exists = path.is_file()
    except (OSError, ValueError):  # a name the OS refuses: too long, or a NUL byte
        exists = False
    if not exists:
        raise AudioError(f"audio file {str(path)[:300]!r} does not exist", code="missing")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"audio file {path.name!r} is empty (0 bytes)", code="empty")
    if size > max_bytes:
        raise AudioError(
            f"audio file {path.name!r} is {size} bytes, over the limit of {max_bytes}",
            code="too_large",
        )
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"audio file {path.name!r} cannot be decoded as WAV, FLAC or OGG ({exc})",
            code="undecodable",
        ) from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"audio file {path.name!r} contains no audio frames", code="empty")
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise AudioError(
            f"audio file {path.name!r} lasts {seconds:.1f} s, over the limit of {max_seconds} s",
            code="too_long",
        )
    peak = 0.0
    frames_read = 0
    try:
        for block in sf.blocks(str(path), blocksize=_BLOCK_FRAMES, dtype="float32"):
            frames_read += block.shape[0]
            if block.size:
                peak = max(peak, float(np.max(np.abs(block))))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"audio file {path.name!r} is corrupt after {frames_read} frames ({exc})",
            code="undecodable",
        ) from None
    if frames_read == 0:
        raise AudioError(f"audio file {path.name!r} contains no audio frames", code="empty")
    if not np.isfinite(peak):
        raise AudioError(f"audio file {path.name!r} contains invalid samples", code="undecodable")
    if peak < SILENCE_PEAK:
        raise AudioError(f"audio file {path.name!r} is silent (peak below -60 dBFS)", code="silent")
    duration = (Decimal(frames_read) / Decimal(info.samplerate)).quantize(
        Decimal("0.001"), rounding=ROUND_HALF_UP
    )
    return AudioInfo(
        sha256=file_sha256(path),
        size_bytes=size,
        duration_seconds=duration,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=frames_read,
        format=str(info.format),
        peak=peak,
    )


def audio_reinspect(path: Path, *, sha256: str) -> AudioInfo:
    """What ``audio_inspect`` found for a file it accepted, read again without decoding:
    the file must still have the SHA-256 it had then (the same bytes decode the same), and
    its header gives the measures. Raises ``AudioError`` with code ``changed`` otherwise.
    """
    path = Path(path)
    try:
        digest = file_sha256(path)
        size = path.stat().st_size
        info = sf.info(str(path))
    except (OSError, ValueError, sf.LibsndfileError, RuntimeError, TypeError):
        digest = ""
    if digest != sha256:
        raise AudioError(f"audio file {path.name!r} changed since it was checked", code="changed")
    return AudioInfo(
        sha256=digest,
        size_bytes=size,
        duration_seconds=(Decimal(info.frames) / Decimal(info.samplerate)).quantize(
            Decimal("0.001"), rounding=ROUND_HALF_UP
        ),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        format=str(info.format),
        peak=None,
    )
