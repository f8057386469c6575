"""Factories for catalog records. ``RecordingFactory`` creates a real audio file and one
100 % ownership share, so every recording it makes satisfies the shares invariant."""

import hashlib
import io
from decimal import Decimal

import factory
import numpy as np
import soundfile as sf
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction

from catalog.models import OptOut, OwnershipShare, Recording, RightsHolder
from catalog.validators import ipi_check_digits, iswc_check_digit


def tone_wav_bytes(
    *,
    seconds: float = 0.5,
    sample_rate: int = 16000,
    freq: float = 440.0,
    amplitude: float = 0.3,
    channels: int = 1,
    fmt: str = "WAV",
) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    signal = (amplitude * np.sin(2 * np.pi * freq * t)).astype("float32")
    if channels > 1:
        signal = np.stack([signal] * channels, axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, signal, sample_rate, format=fmt, subtype="PCM_16" if fmt == "WAV" else None)
    return buffer.getvalue()


def isrc_for(n: int) -> str:
    return f"QZABC26{n:05d}"


def ipi_for(n: int) -> str:
    nine = f"{n:09d}"
    return nine + ipi_check_digits(nine)


def iswc_for(n: int) -> str:
    nine = f"{n:09d}"
    return f"T{nine}{iswc_check_digit(nine)}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            from django.contrib.auth.models import Group

            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        if create:
            self.save()


class RightsHolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RightsHolder

    legal_name = factory.Sequence(lambda n: f"Holder {n}")
    kind = RightsHolder.Kind.ARTIST
    payout_currency = "USD"


class RecordingFactory(factory.django.DjangoModelFactory):
    """A recording with a generated tone (distinct per sequence) and a 100 % share.

    ``shares=[(holder, Decimal), ...]`` replaces the default single share.
    """

    class Meta:
        model = Recording
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Track {n}")
    isrc = factory.Sequence(isrc_for)
    duration_seconds = Decimal("0.500")
    sample_rate = 16000
    audio = factory.LazyAttribute(
        lambda o: ContentFile(tone_wav_bytes(freq=200 + o.tone), name=f"{o.isrc}.wav")
    )
    audio_sha256 = factory.LazyAttribute(
        lambda o: hashlib.sha256(tone_wav_bytes(freq=200 + o.tone)).hexdigest()
    )

    class Params:
        tone = factory.Sequence(lambda n: n % 5000)

    @classmethod
    def _generate(cls, strategy, params):
        # The recording and its shares commit together: PostgreSQL refuses, at commit, a
        # recording whose shares do not sum to 100 (migration 0002).
        with transaction.atomic():
            return super()._generate(strategy, params)

    @factory.post_generation
    def shares(self, create, extracted, **kwargs):
        if not create:
            return
        pairs = extracted if extracted is not None else [(RightsHolderFactory(), Decimal(100))]
        OwnershipShare.objects.bulk_create(
            [OwnershipShare.of(self, rights_holder=h, percent=p) for h, p in pairs]
        )


class OptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OptOut

    rights_holder = factory.SubFactory(RightsHolderFactory)
    effective_from = factory.Faker("date_object")
