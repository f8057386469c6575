"""Factories for attribution's models."""

import hashlib

import factory
from django.utils import timezone

from attribution.models import ModelVersion


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registered model version without a checkpoint on disk or a training set."""

    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"model-{n}")
    checkpoint_sha256 = factory.Sequence(lambda n: hashlib.sha256(f"ckpt{n}".encode()).hexdigest())
    checkpoint_path = "/nonexistent/model.safetensors"
    config = factory.LazyFunction(dict)
    manifest_sha256 = factory.Sequence(lambda n: hashlib.sha256(f"man{n}".encode()).hexdigest())
    trained_at = factory.LazyFunction(timezone.now)
