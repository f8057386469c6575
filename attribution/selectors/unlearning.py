"""Reads of unlearning jobs: their state for pages and the API, and what an opt-out has
become (requested -> unlearned in a derived model version -> in use since a date)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from attribution.models import ModelVersion, Unlearning
from catalog.models import OptOut, Recording


def unlearnings_of(model_version: ModelVersion) -> QuerySet[Unlearning]:
    """The unlearnings started from a model version, newest first."""
    return (
        Unlearning.objects.filter(parent=model_version)
        .select_related("derived", "retrained_reference")
        .prefetch_related("forget_recordings")
        .order_by("-created_at")
    )


def unlearning_metrics_summary(unlearning: Unlearning) -> str:
    """The checks in one line: "forgetting passed, membership failed, ..."."""
    checks = (unlearning.metrics or {}).get("checks") or {}
    words = {True: "passed", False: "failed", None: "not measured"}
    return ", ".join(f"{name} {words[check.get('passed')]}" for name, check in checks.items())


def unlearning_status(unlearning: Unlearning) -> dict:
    """A job's state in words and numbers (its page and JSON status endpoint, the API)."""
    status = Unlearning.Status(unlearning.status)
    return {
        "id": unlearning.pk,
        "status": status.value,
        "label": status.label
        + (f": {unlearning.progress_percent} %" if status == Unlearning.Status.RUNNING else ""),
        "percent": unlearning.progress_percent,
        "stage": unlearning.progress_stage,
        "done": status in (Unlearning.Status.READY, Unlearning.Status.FAILED),
        "error": unlearning.error,
        "parent": unlearning.parent.name,
        "derived": unlearning.derived.name if unlearning.derived_id else None,
        "method": unlearning.method,
        "config": unlearning.config,
        "thresholds": unlearning.thresholds,
        "forget_isrcs": sorted(r.isrc for r in unlearning.forget_recordings.all()),
        "checkpoint_sha256": unlearning.checkpoint_sha256,
        "validation_passed": unlearning.validation_passed,
        "metrics": unlearning.metrics,
        "override_reason": unlearning.override_reason,
        "promoted_at": unlearning.promoted_at.isoformat() if unlearning.promoted_at else None,
    }


def _covered_recordings(opt_out: OptOut) -> QuerySet[Recording]:
    if opt_out.recording_id is not None:
        return Recording.objects.filter(pk=opt_out.recording_id)
    return Recording.objects.filter(ownership_shares__rights_holder=opt_out.rights_holder_id)


def opt_out_unlearning_state(opt_out: OptOut) -> dict:
    """What an opt-out has become for the models in use:

    requested  no derived version without its recordings is ready yet
    unlearned  "unlearned in model version X" (with the validation in words), not in use yet
    in_use     "in use since DATE": from then on new generations are made with a version
               that was not trained on them, so the recordings stopped earning from them
    """
    jobs = (
        Unlearning.objects.filter(
            forget_recordings__in=_covered_recordings(opt_out), status=Unlearning.Status.READY
        )
        .select_related("derived")
        .distinct()
    )
    promoted = jobs.exclude(promoted_at__isnull=True).order_by("promoted_at").first()
    if promoted is not None:
        return {
            "state": "in_use",
            "label": f"in use since {promoted.promoted_at:%Y-%m-%d}: {promoted.derived.name}",
            "model_version": promoted.derived.name,
            "since": promoted.promoted_at,
            "metrics": unlearning_metrics_summary(promoted),
        }
    ready = jobs.order_by("-finished_at").first()
    if ready is not None:
        return {
            "state": "unlearned",
            "label": f"unlearned in model version {ready.derived.name} "
            f"({unlearning_metrics_summary(ready)})",
            "model_version": ready.derived.name,
            "since": None,
            "metrics": unlearning_metrics_summary(ready),
        }
    return {
        "state": "requested",
        "label": "requested",
        "model_version": None,
        "since": None,
        "metrics": "",
    }


def recordings_stopped_earning(recording_ids: list[int]) -> dict[int, datetime]:
    """For each recording unlearned in a promoted version: when that version went into use
    (generations made from then on with it pay it nothing)."""
    found: dict[int, datetime] = {}
    rows = Unlearning.objects.filter(
        forget_recordings__in=recording_ids, promoted_at__isnull=False
    ).values_list("forget_recordings", "promoted_at")
    for recording_id, promoted_at in rows:
        if recording_id in recording_ids and (
            recording_id not in found or promoted_at < found[recording_id]
        ):
            found[recording_id] = promoted_at
    return found


def holder_recordings_stopped_earning(holder_id: int) -> list[dict]:
    """A holder's recordings unlearned in a version that is in use: from when (and with which
    version) new generations stopped paying them. Generations made before keep what they paid."""
    rows = (
        Unlearning.objects.filter(
            promoted_at__isnull=False,
            forget_recordings__ownership_shares__rights_holder=holder_id,
        )
        .select_related("derived", "parent")
        .values_list(
            "forget_recordings__isrc",
            "forget_recordings__title",
            "promoted_at",
            "derived__name",
            "parent__name",
        )
        .distinct()
        .order_by("promoted_at")
    )
    found: dict[str, dict] = {}
    for isrc, title, since, derived, parent in rows:
        found.setdefault(
            isrc,
            {"isrc": isrc, "title": title, "since": since, "model_version": derived,
             "parent": parent},
        )  # fmt: skip
    return sorted(found.values(), key=lambda row: row["isrc"])
