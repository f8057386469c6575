"""Generations of the model and the attribution runs that score them.

A ``Generation`` is one output of a model version, with the revenue it earned. An
``AttributionRun`` scores that generation against the model version's training set
(Eq. 2 of Choi et al.); ``scores[i]`` belongs to the training-set entry at position ``i``.
Everything that reproduces the scores is stored with them.
"""

from django.conf import settings
from django.db import models

from catalog.models import ModelVersion


class Generation(models.Model):
    class Status(models.TextChoices):
        RECORDED = "recorded", "Recorded"
        ATTRIBUTING = "attributing", "Attributing"
        SETTLED = "settled", "Settled"
        FAILED = "failed", "Failed"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="generations"
    )
    prompt = models.TextField()
    duration_seconds = models.DecimalField(max_digits=10, decimal_places=3)
    audio = models.FileField(upload_to="generations/", max_length=500)
    audio_sha256 = models.CharField(max_length=64)
    revenue_minor = models.BigIntegerField(help_text="Revenue in the currency's minor units")
    currency = models.CharField(max_length=3)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generations"
    )
    idempotency_key = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(revenue_minor__gte=0), name="generation_revenue_non_negative"
            )
        ]

    def __str__(self) -> str:
        return f"Generation {self.pk}: {self.prompt[:40]}"


class AttributionRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    generation = models.ForeignKey(
        Generation, on_delete=models.PROTECT, related_name="attribution_runs"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="attribution_runs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress_percent = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # Provenance: what reproduces the scores bit for bit.
    checkpoint_sha256 = models.CharField(max_length=64)
    manifest_sha256 = models.CharField(max_length=64)
    engine_config = models.JSONField(default=dict)
    seed = models.BigIntegerField(default=0)
    library_versions = models.JSONField(default=dict)
    scores = models.JSONField(null=True, blank=True, help_text="One float per training-set entry")
    scores_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"AttributionRun {self.pk} ({self.status}) for generation {self.generation_id}"
