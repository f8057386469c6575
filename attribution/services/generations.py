"""Recording a generation: its audio checked, stored, and its attribution queued.

``generation_record`` is idempotent by the caller's idempotency key; ``generation_generate``
samples audio with the model version's own sampler first. A generation may be conditioned
on catalog recordings (its references, ``attribution.services.references``): each must be
licensed for reference use when the generation is recorded, or nothing is recorded.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import soundfile
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from attribution.models import Generation, ModelVersion
from attribution.services.references import (
    ReferenceDeclaration,
    generation_references_create,
    reference_audio_load,
    references_resolve,
)
from attribution.services.runs import attribution_run_queue
from attribution.services.workers import engine_config, loaded_model_for
from catalog.models import Recording
from core.exceptions import ApplicationError
from core.services import audit_record

SILENCE_PEAK = 1e-4


@dataclass(frozen=True)
class AudioSummary:
    sha256: str
    sample_rate: int
    frames: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def _audio_inspect(data: bytes) -> AudioSummary:
    """Decode generated audio; refuse undecodable, empty, non-finite or silent audio."""
    try:
        samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ApplicationError(
            f"The audio could not be decoded (WAV, FLAC or OGG expected): {exc}", field="audio"
        ) from exc
    if samples.shape[0] == 0:
        raise ApplicationError("The audio is empty.", field="audio")
    if not np.isfinite(samples).all():
        raise ApplicationError("The audio contains NaN or infinite samples.", field="audio")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise ApplicationError("The audio is silent.", field="audio")
    return AudioSummary(
        sha256=hashlib.sha256(data).hexdigest(),
        sample_rate=int(sample_rate),
        frames=int(samples.shape[0]),
        channels=int(samples.shape[1]),
    )


def _model_max_seconds(model_version: ModelVersion) -> float:
    config = model_version.config
    return float(config["sample_size"]) / float(config["sample_rate"])


def _reference_key(audio_sha256: str, noise_level: float | None) -> str:
    noise = None if noise_level is None else float(noise_level)
    return f"{(audio_sha256 or '').strip().lower()}@{noise}"


def model_version_refuse_retired(model_version: ModelVersion) -> None:
    """No generation is recorded with a model version once it is retired (a derived version
    without opted-out recordings replaced it: services/unlearning.py)."""
    retired_at = ModelVersion.objects.filter(pk=model_version.pk).values_list(
        "retired_at", flat=True
    )[0]  # as committed: a page may hold the version from before the switch
    if retired_at is not None:
        replaced_by = (
            ModelVersion.objects.filter(unlearned_from__parent=model_version)
            .exclude(in_use_since__isnull=True)
            .order_by("-in_use_since")
            .first()
        )
        raise ApplicationError(
            f"Model version {model_version.name!r} is retired since "
            f"{retired_at:%Y-%m-%d %H:%M}"
            + (f"; use {replaced_by.name!r}." if replaced_by is not None else "."),
            field="model_version",
        )


def _fingerprint(**fields: Any) -> dict[str, str]:
    return {key: str(value) for key, value in fields.items()}


@transaction.atomic
def generation_record(
    *,
    model_version: ModelVersion,
    prompt: str,
    audio: bytes,
    revenue_minor: int,
    currency: str,
    requested_by: AbstractBaseUser,
    idempotency_key: str,
    duration_seconds: Decimal | None = None,
    source: str = Generation.Source.UPLOADED,
    seed: int | None = None,
    references: Sequence[ReferenceDeclaration] = (),
) -> Generation:
    """Record a generation and queue its attribution (idempotent by ``idempotency_key``).

    The same key with the same request returns the existing generation and queues
    nothing; the same key with a different request is refused. ``references``: the catalog
    recordings the audio was conditioned on, by audio hash; each must match a catalog
    recording and be licensed for reference use today, or nothing is recorded.
    """
    idempotency_key = (idempotency_key or "").strip()
    if not idempotency_key or len(idempotency_key) > 128:
        raise ApplicationError(
            "An idempotency key of 1 to 128 characters is required.", field="idempotency_key"
        )
    prompt = (prompt or "").strip()
    if not prompt:
        raise ApplicationError("A generation needs its prompt.", field="prompt")
    if isinstance(revenue_minor, bool) or not isinstance(revenue_minor, int) or revenue_minor < 0:
        raise ApplicationError(
            "Revenue must be a non-negative whole number of minor units.", field="revenue_minor"
        )
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ApplicationError("Currency must be a 3-letter ISO 4217 code.", field="currency")
    summary = _audio_inspect(audio)
    measured = Decimal(str(round(summary.seconds, 3)))
    if duration_seconds is not None and abs(Decimal(duration_seconds) - measured) > Decimal("0.5"):
        raise ApplicationError(
            f"The stated duration {duration_seconds} s does not match the audio ({measured} s).",
            field="duration_seconds",
        )
    max_seconds = _model_max_seconds(model_version)
    if summary.seconds > max_seconds + 1e-6:
        raise ApplicationError(
            f"The audio is {summary.seconds:.2f} s long; model version {model_version.name!r} "
            f"generates at most {max_seconds:.2f} s.",
            field="audio",
        )

    request = _fingerprint(
        model_version=model_version.pk,
        prompt=prompt,
        audio_sha256=summary.sha256,
        revenue_minor=revenue_minor,
        currency=currency,
    )
    declared = ",".join(_reference_key(d.audio_sha256, d.noise_level) for d in references)
    if declared:  # absent without references: such requests compare as they always did
        request["references"] = declared
    existing = (
        Generation.objects.select_for_update().filter(idempotency_key=idempotency_key).first()
    )
    if existing is not None:
        stored = _fingerprint(
            model_version=existing.model_version_id,
            prompt=existing.prompt,
            audio_sha256=existing.audio_sha256,
            revenue_minor=existing.revenue_minor,
            currency=existing.currency,
        )
        stored_references = ",".join(
            _reference_key(r.audio_sha256, r.noise_level)
            for r in existing.references.order_by("index")
        )
        if stored_references:
            stored["references"] = stored_references
        if stored != request:
            raise ApplicationError(
                "This idempotency key was already used for a different generation.",
                field="idempotency_key",
            )
        return existing
    model_version_refuse_retired(model_version)

    resolved = references_resolve(declarations=references, day=timezone.localdate())
    generation = Generation(
        model_version=model_version,
        prompt=prompt,
        duration_seconds=measured,
        audio_sha256=summary.sha256,
        revenue_minor=revenue_minor,
        currency=currency,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        source=source,
        seed=seed,
    )
    generation.audio.save(f"{summary.sha256}.wav", ContentFile(audio), save=False)
    generation.full_clean()
    generation.save()
    generation_references_create(generation=generation, references=resolved)
    if resolved:
        request["reference_licences"] = ",".join(str(r.licence_id) for r in resolved)
    audit_record(actor=requested_by, action="generation.record", obj=generation, after=request)
    attribution_run_queue(generation=generation, actor=None)
    return generation


def wav_float_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """32-bit float WAV of ``samples`` (frames, channels), the same bytes for the same samples.

    libsndfile adds a PEAK chunk with a wall-clock timestamp to float WAVs. The file's hash
    names the generation's audio and keys its unlearning draws, so the chunk is dropped:
    the same sampled audio must give the same hash, and so the same scores, on every run.
    """
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format="WAV", subtype="FLOAT")
    data = buffer.getvalue()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        end = offset + 8 + size + (size & 1)  # chunks are padded to an even length
        if data[offset : offset + 4] != b"PEAK":
            chunks.append(data[offset:end])
        offset = end
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def generation_generate(
    *,
    model_version: ModelVersion,
    prompt: str,
    seconds_total: float,
    seed: int,
    revenue_minor: int,
    currency: str,
    requested_by: AbstractBaseUser,
    idempotency_key: str,
    steps: int | None = None,
    reference: Recording | None = None,
    reference_noise_level: float | None = None,
) -> Generation:
    """Generate audio with the model version's sampler, then record it (idempotent).

    A repeated call with the same key returns the recorded generation without sampling
    again. With ``reference`` the sampler starts from that catalog recording's stored audio
    noised to ``reference_noise_level`` (stable-audio-tools' audio-to-audio variation); its
    file must still have the catalog's hash and its use must be licensed, both checked
    before sampling.
    """
    import torch

    from attribution.engine.sampling import generate

    existing = Generation.objects.filter(idempotency_key=(idempotency_key or "").strip()).first()
    if existing is not None:
        if existing.prompt != prompt.strip() or existing.model_version_id != model_version.pk:
            raise ApplicationError(
                "This idempotency key was already used for a different generation.",
                field="idempotency_key",
            )
        return existing
    model_version_refuse_retired(model_version)
    max_seconds = _model_max_seconds(model_version)
    if not 0 < seconds_total <= max_seconds:
        raise ApplicationError(
            f"Duration must be between 0 and {max_seconds:.2f} s for this model.",
            field="seconds_total",
        )
    declarations: list[ReferenceDeclaration] = []
    options: dict[str, Any] = {"steps": steps} if steps else {}
    if reference is not None:
        if reference_noise_level is None:
            raise ApplicationError(
                "A reference needs its noise level (conditioning strength).",
                field="reference_noise_level",
            )
        samples, reference_rate, reference_sha = reference_audio_load(recording=reference)
        declarations.append(
            ReferenceDeclaration(
                audio_sha256=reference_sha, noise_level=reference_noise_level, isrc=reference.isrc
            )
        )
        references_resolve(declarations=declarations, day=timezone.localdate())  # fail fast
        options["init_audio"] = (torch.from_numpy(samples), reference_rate)  # (C, T)
        options["init_noise_level"] = float(reference_noise_level)
    elif reference_noise_level is not None:
        raise ApplicationError(
            "A noise level needs a reference recording.", field="reference_noise_level"
        )
    device = engine_config().device
    loaded = loaded_model_for(model_version, device=device)
    try:
        audio, sample_rate = generate(
            loaded.model.module,
            loaded.model.config,
            prompt,
            seconds_total,
            seed,
            device=device,
            **options,
        )  # (C, T)
    except ValueError as exc:  # e.g. an unknown key in the model config's "sampling"
        raise ApplicationError(f"The model cannot generate: {exc}") from exc
    return generation_record(
        model_version=model_version,
        prompt=prompt,
        audio=wav_float_bytes(audio.detach().cpu().numpy().T, sample_rate),
        revenue_minor=revenue_minor,
        currency=currency,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        source=Generation.Source.GENERATED,
        seed=seed,
        references=declarations,
    )
