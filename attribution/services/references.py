"""The catalog recordings a generation is conditioned on: their audio checked against the
catalog's hash, their licences checked, their terms recorded with the generation.

A reference is identified by its audio's SHA-256. The platform's own sampler reads the
recording's stored file and hashes it (``reference_audio_load``); an outside service that
uploads a generation declares the SHA-256 of the reference audio it used (and, optionally,
the ISRC it believes that audio is). Either way the hash must equal a catalog recording's
``audio_sha256``, and that recording's owners must license reference use on the day the
generation is recorded (``catalog.selectors.reference_licence_check``).

Several references each take their own licence's share of the pool; together they may
take at most 100 % of it (docs/decisions/0019-reference-shares.md).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import soundfile

from attribution.models import Generation, GenerationReference
from catalog.models import Recording
from catalog.selectors import reference_licence_check
from core.exceptions import ApplicationError

MAX_REFERENCES = 8
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ReferenceDeclaration:
    """One reference as a request states it: the SHA-256 of its audio, the noise level
    (sigma) it was conditioned at, and optionally the ISRC the caller believes it is."""

    audio_sha256: str
    noise_level: float | None = None
    isrc: str = ""


@dataclass(frozen=True)
class ResolvedReference:
    index: int
    recording: Recording
    audio_sha256: str
    noise_level: float | None
    licence_id: int
    pool_share_percent: Decimal
    licences: tuple[tuple[int, int, Decimal], ...]

    def fingerprint(self) -> str:
        return f"{self.audio_sha256}@{self.noise_level}"


def references_resolve(
    *, declarations: Sequence[ReferenceDeclaration], day: date
) -> list[ResolvedReference]:
    """Match each declaration to a catalog recording by audio hash and check its licence.

    Refuses (``ApplicationError``, field ``references``) a malformed hash, a hash no
    catalog recording has, an ISRC that names another recording, the same recording
    twice, a reference without a licence in force, and shares summing over 100 %.
    """
    if len(declarations) > MAX_REFERENCES:
        raise ApplicationError(
            f"At most {MAX_REFERENCES} references per generation.", field="references"
        )
    resolved: list[ResolvedReference] = []
    for index, declaration in enumerate(declarations):
        sha = (declaration.audio_sha256 or "").strip().lower()
        label = f"Reference {index + 1}"
        if not _SHA256.match(sha):
            raise ApplicationError(
                f"{label}: audio_sha256 must be 64 hexadecimal characters.", field="references"
            )
        noise = declaration.noise_level
        if noise is not None and (
            isinstance(noise, bool) or not math.isfinite(float(noise)) or float(noise) <= 0
        ):
            raise ApplicationError(
                f"{label}: the noise level must be a positive number.", field="references"
            )
        recording = Recording.objects.filter(audio_sha256=sha).order_by("pk").first()
        if recording is None:
            raise ApplicationError(
                f"{label}: no catalog recording has audio with SHA-256 {sha}; only catalog "
                "recordings can be declared as references.",
                field="references",
            )
        isrc = (declaration.isrc or "").strip().upper().replace("-", "")
        if isrc and isrc != recording.isrc:
            raise ApplicationError(
                f"{label}: the audio is {recording.isrc}, not {isrc}.", field="references"
            )
        if any(r.recording.pk == recording.pk for r in resolved):
            raise ApplicationError(
                f"{label}: {recording.isrc} is declared twice.", field="references"
            )
        check = reference_licence_check(recording=recording, day=day)
        if not check.permitted:
            raise ApplicationError(
                f"{label}: reference use of {recording.isrc} is not licensed: {check.reason}",
                field="references",
            )
        resolved.append(
            ResolvedReference(
                index=index,
                recording=recording,
                audio_sha256=sha,
                noise_level=None if noise is None else float(noise),
                licence_id=check.licence_id,
                pool_share_percent=check.pool_share_percent,
                licences=check.licences,
            )
        )
    total = sum((r.pool_share_percent for r in resolved), Decimal(0))
    if total > 100:
        raise ApplicationError(
            f"The references' licences take {total} % of the royalty pool together; "
            "at most 100 % can be paid.",
            field="references",
        )
    return resolved


def generation_references_create(
    *, generation: Generation, references: Sequence[ResolvedReference]
) -> list[GenerationReference]:
    """Store the resolved references of a generation being recorded (caller's transaction)."""
    rows = [
        GenerationReference(
            generation=generation,
            index=r.index,
            recording=r.recording,
            noise_level=r.noise_level,
            audio_sha256=r.audio_sha256,
            licence_id=r.licence_id,
            pool_share_percent=r.pool_share_percent,
            licences=[[lic, holder, str(percent)] for lic, holder, percent in r.licences],
        )
        for r in references
    ]
    return GenerationReference.objects.bulk_create(rows)


def reference_audio_load(*, recording: Recording) -> tuple[np.ndarray, int, str]:
    """The recording's stored audio as float32 (channels, frames), its sample rate and its
    SHA-256, refused unless the file's hash is the one the catalog registered."""
    try:
        with recording.audio.open("rb") as handle:
            data = handle.read()
    except (OSError, ValueError) as exc:
        raise ApplicationError(
            f"The audio of {recording.isrc} cannot be read: {exc}", field="reference"
        ) from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != recording.audio_sha256:
        raise ApplicationError(
            f"The stored audio of {recording.isrc} does not match its registered SHA-256 "
            f"({sha} instead of {recording.audio_sha256}); it cannot be used as a reference.",
            field="reference",
        )
    samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.T), int(sample_rate), sha  # (C, T)
