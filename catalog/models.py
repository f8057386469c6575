"""Rights holders, recordings (the models' training tracks), ownership shares, model
versions and their training sets.

Invariant: the ownership shares of a recording sum to exactly 100 percent (enforced in
``catalog.services`` and, where the database can, by a constraint).
"""

from django.conf import settings
from django.db import models


class RightsHolder(models.Model):
    class Kind(models.TextChoices):
        ARTIST = "artist", "Artist"
        LABEL = "label", "Label"
        PUBLISHER = "publisher", "Publisher"
        ESTATE = "estate", "Estate"
        COLLECTIVE = "collective", "Collective"

    legal_name = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    isni = models.CharField(max_length=16, blank=True, help_text="16 characters, no spaces")
    ipi = models.CharField(max_length=11, blank=True, help_text="IPI name number, 11 digits")
    payout_currency = models.CharField(max_length=3, default="USD")
    contact_email = models.EmailField(blank=True)
    payout_details = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="rights_holders"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return self.legal_name


class Recording(models.Model):
    title = models.CharField(max_length=255)
    isrc = models.CharField(max_length=12, unique=True)
    iswc = models.CharField(max_length=11, blank=True)
    duration_seconds = models.DecimalField(max_digits=10, decimal_places=3)
    sample_rate = models.PositiveIntegerField()
    audio = models.FileField(upload_to="recordings/", max_length=500)
    audio_sha256 = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["isrc"]

    def __str__(self) -> str:
        return f"{self.title} ({self.isrc})"


class OwnershipShare(models.Model):
    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="ownership_shares"
    )
    rights_holder = models.ForeignKey(
        RightsHolder, on_delete=models.PROTECT, related_name="ownership_shares"
    )
    percent = models.DecimalField(max_digits=7, decimal_places=4)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recording", "rights_holder"], name="ownership_share_unique_holder"
            ),
            models.CheckConstraint(
                condition=models.Q(percent__gt=0) & models.Q(percent__lte=100),
                name="ownership_share_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rights_holder} {self.percent}% of {self.recording.isrc}"


class ModelVersion(models.Model):
    name = models.CharField(max_length=255, unique=True)
    checkpoint_sha256 = models.CharField(max_length=64, unique=True)
    checkpoint_path = models.CharField(max_length=1000)
    config = models.JSONField()
    manifest_sha256 = models.CharField(max_length=64)
    trained_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class TrainingSetEntry(models.Model):
    """One recording at its position in a model version's ordered training set."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="training_set_entries"
    )
    position = models.PositiveIntegerField()
    recording = models.ForeignKey(
        Recording, on_delete=models.PROTECT, related_name="training_set_entries"
    )

    class Meta:
        ordering = ["model_version", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "position"], name="training_set_unique_position"
            ),
            models.UniqueConstraint(
                fields=["model_version", "recording"], name="training_set_unique_recording"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} #{self.position}: {self.recording.isrc}"
