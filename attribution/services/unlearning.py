"""Opt-out that takes effect: unlearning a forget set from a model version
(``engine.forgetting``), registering the result as a derived model version, validating it, and
promoting it in place of its parent.

Lineage: the ``Unlearning`` row records the parent, the forget set, the method and its
configuration, the metrics and the derived checkpoint's hash; the derived version's training
set is the parent's minus the forget set (``TrainingSetEntry`` rows written by registration
from the derived manifest). Generations made with the derived version are attributed over
that set, so they pay nothing to forgotten recordings; generations made with the parent keep
what they were paid.

Which model version is in use: a model version takes generations until it is retired.
Promoting a derived version marks it ``in_use_since`` now and retires its parent (no
generation is recorded with the parent after that moment). A derived version whose validation
failed is promoted only with a catalog admin's written reason (audited).

Delivery: the job is handed to the broker once the request commits (``dispatch``); when the
broker cannot take it the request still stands, queued. While a worker runs it, the job writes
its progress and a sign of life (``heartbeat_at``) at least every ``HEARTBEAT_SECONDS``. A
job whose message was lost (never sent, forgotten by a restarted broker, its worker gone for
good) is sent again by the reconciler (``reconcile``), bounded, and then fails with the
reason; a redelivered job resumes from its saved state.

Invariant: ``Unlearning.promoted_at`` is set only on a ready job with a derived version (a
database constraint), and only once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from attribution.models import ModelVersion, Unlearning
from attribution.selectors.model_versions import opted_out_recordings_in_model_version
from attribution.services.dispatch import unlearning_send
from attribution.services.progress import Heartbeat, ThrottledProgress
from catalog.models import Recording
from catalog.services.common import full_clean
from core.exceptions import ApplicationError
from core.services import audit_record

User = AbstractBaseUser
MAX_HELD_OUT = 32  # held-out recordings compared (the first by ISRC)


def _engine_configs(method: str, config: dict, thresholds: dict):
    from attribution.engine.errors import EngineError
    from attribution.engine.forgetting import ForgettingConfig, ValidationThresholds

    try:
        forgetting = ForgettingConfig.from_dict({**config, "method": method})
        limits = ValidationThresholds(**thresholds)
    except EngineError as exc:
        raise ApplicationError(str(exc), field=exc.field or "config") from exc
    except TypeError as exc:
        raise ApplicationError(
            f"An unlearning setting is not valid ({exc}).", field="config"
        ) from exc
    return forgetting, limits


@transaction.atomic
def unlearning_request(
    *,
    parent: ModelVersion,
    actor: User | None,
    method: str = "fisher",
    recordings: list[Recording] | None = None,
    config: dict[str, Any] | None = None,
    thresholds: dict[str, Any] | None = None,
    retrained_reference: ModelVersion | None = None,
    reason: str = "",
) -> Unlearning:
    """A catalog admin asks for a derived version of ``parent`` without ``recordings``
    (default: the recordings of its training set opted out by now). The job is sent to the
    ``gpu`` queue once the transaction commits (the reconciler sends it when the broker could
    not take it then). Refused while another unlearning of the same parent is queued or
    running."""
    ModelVersion.objects.select_for_update().filter(pk=parent.pk).first()
    forgetting, limits = _engine_configs(method, config or {}, thresholds or {})
    if recordings is None:
        recordings = opted_out_recordings_in_model_version(parent)
    recordings = list(dict.fromkeys(recordings))
    if not recordings:
        raise ApplicationError(
            f"Model version {parent.name!r} holds no opted-out recording to unlearn; choose "
            "the recordings.",
            field="recordings",
        )
    trained_on = set(parent.training_set_entries.values_list("recording_id", flat=True))
    outside = [r.isrc for r in recordings if r.pk not in trained_on]
    if outside:
        raise ApplicationError(
            f"{', '.join(outside[:10])} is not in the training set of {parent.name!r}.",
            field="recordings",
        )
    if len(recordings) >= len(trained_on):
        raise ApplicationError("Nothing would be left of the training set.", field="recordings")
    if retrained_reference is not None:
        if retrained_reference.pk == parent.pk:
            raise ApplicationError("The parent is not a retrained reference.", field="reference")
        kept = retrained_reference.training_set_entries.filter(
            recording__in=[r.pk for r in recordings]
        )
        if kept.exists():
            raise ApplicationError(
                f"The retrained reference {retrained_reference.name!r} was trained on "
                "recordings of the forget set.",
                field="reference",
            )
    busy = parent.unlearnings.filter(
        status__in=[Unlearning.Status.QUEUED, Unlearning.Status.RUNNING]
    ).first()
    if busy is not None:
        raise ApplicationError(
            f"Unlearning {busy.pk} of {parent.name!r} is already {busy.status}.", field="parent"
        )
    unlearning = Unlearning(
        parent=parent,
        retrained_reference=retrained_reference,
        method=forgetting.method,
        config=forgetting.to_dict(),
        thresholds=limits.to_dict(),
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    full_clean(unlearning)
    unlearning.save()
    unlearning.forget_recordings.set(recordings)
    audit_record(
        actor=actor,
        action="unlearning.request",
        obj=unlearning,
        after={
            "parent": parent.checkpoint_sha256,
            "method": unlearning.method,
            "config": unlearning.config,
            "forget_isrcs": sorted(r.isrc for r in recordings),
            "retrained_reference": getattr(retrained_reference, "checkpoint_sha256", None),
        },
        reason=reason,
    )
    transaction.on_commit(lambda: unlearning_send(unlearning_id=unlearning.pk))
    return unlearning


def _update(unlearning_id: int, **fields: Any) -> None:
    """Progress of a running job, with its worker's sign of life (``heartbeat_at``)."""
    Unlearning.objects.filter(pk=unlearning_id).update(heartbeat_at=timezone.now(), **fields)


def unlearning_folder(unlearning: Unlearning) -> Path:
    """Where a job keeps its running state and writes the derived checkpoint."""
    return Path(settings.ARTIFACTS_DIR) / "unlearning" / str(unlearning.pk)


def unlearning_run(*, unlearning_id: int, progress=None) -> Unlearning | None:
    """Make (or resume) the derived checkpoint, register it, validate it (the ``gpu`` task).

    Idempotent: a ready or failed job is returned as it is; a redelivered running job
    resumes from its saved state and registers the same checkpoint (same bytes, same hash).
    Expected failures mark the job failed with the reason; they are not retried.
    """
    with transaction.atomic():
        unlearning = Unlearning.objects.select_for_update().filter(pk=unlearning_id).first()
        if unlearning is None:
            return None
        if unlearning.status in (Unlearning.Status.READY, Unlearning.Status.FAILED):
            return unlearning
        unlearning.status = Unlearning.Status.RUNNING
        unlearning.attempts += 1
        unlearning.heartbeat_at = timezone.now()
        unlearning.started_at = unlearning.started_at or unlearning.heartbeat_at
        unlearning.save(update_fields=["status", "attempts", "started_at", "heartbeat_at"])
    try:
        metrics, passed, derived, sha256 = _derive_and_validate(unlearning, progress)
    except ApplicationError as exc:
        unlearning_fail(unlearning_id=unlearning.pk, reason=str(exc))
        raise
    with transaction.atomic():
        unlearning = Unlearning.objects.select_for_update().get(pk=unlearning_id)
        unlearning.derived = derived
        unlearning.checkpoint_sha256 = sha256
        unlearning.metrics = metrics
        unlearning.validation_passed = passed
        unlearning.status = Unlearning.Status.READY
        unlearning.progress_percent = 100
        unlearning.progress_stage = "done"
        unlearning.finished_at = timezone.now()
        unlearning.error = ""
        unlearning.save()
        audit_record(
            actor=None,
            action="unlearning.ready",
            obj=unlearning,
            after={
                "derived": derived.name,
                "checkpoint_sha256": sha256,
                "validation_passed": passed,
            },
        )
    return unlearning


def unlearning_fail(*, unlearning_id: int, reason: str) -> None:
    """Mark a job failed (a permanent error, or a task out of retries)."""
    with transaction.atomic():
        unlearning = Unlearning.objects.select_for_update().filter(pk=unlearning_id).first()
        if unlearning is None or unlearning.status == Unlearning.Status.READY:
            return
        unlearning.status = Unlearning.Status.FAILED
        unlearning.error = reason or "failed without a message"
        unlearning.finished_at = timezone.now()
        unlearning.save(update_fields=["status", "error", "finished_at"])
        audit_record(
            actor=None, action="unlearning.failed", obj=unlearning, after={"error": reason}
        )


def _held_out_items(parent: ModelVersion, model) -> list:
    """Catalog recordings outside the parent's training set, as engine items (their titles as
    captions: the catalog holds no training caption for them)."""
    from attribution.engine.items import TrainingItem, read_audio

    recordings = (
        Recording.objects.exclude(training_set_entries__model_version=parent)
        .exclude(audio="")
        .order_by("isrc")[:MAX_HELD_OUT]
    )
    items = []
    for recording in recordings:
        audio = read_audio(Path(recording.audio.path), model)  # (C, T)
        items.append(
            TrainingItem(
                item_id=f"held-out:{recording.isrc}",
                audio=audio,
                prompt=recording.title,
                seconds_start=0.0,
                seconds_total=float(math.ceil(audio.shape[-1] / model.sample_rate)),
                metadata={"isrc": recording.isrc},
            )
        )
    return items


def _derive_and_validate(unlearning: Unlearning, progress=None):
    from attribution.engine import forgetting as engine
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.errors import EngineError
    from attribution.engine.items import encode_items, load_training_set
    from attribution.engine.unlearn import parameters_swapped
    from attribution.services.model_versions import model_version_register
    from attribution.services.workers import engine_config, loaded_model_for, text_encoder_dirs

    parent = unlearning.parent
    cfg, limits = _engine_configs(unlearning.method, unlearning.config, unlearning.thresholds)
    engine_cfg = engine_config()

    def write(stage: str, percent: int) -> None:
        _update(unlearning.pk, progress_stage=stage[:32], progress_percent=percent)

    unlearn_progress = ThrottledProgress(write, 0, 70)
    check_progress = ThrottledProgress(write, 70, 99)
    heartbeat = Heartbeat(lambda: _update(unlearning.pk))

    def report(stage: str, done: int, total: int) -> None:
        heartbeat()
        (unlearn_progress if stage in ("unlearn", "encode") else check_progress)(stage, done, total)
        if progress is not None:
            progress(stage, done, total)

    loaded = loaded_model_for(parent, device=engine_cfg.device)
    model, train_set = loaded.model, loaded.train_set
    forget_isrcs = set(unlearning.forget_recordings.values_list("isrc", flat=True))
    folder = unlearning_folder(unlearning)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        encoded = list(loaded.store.encodings(model, train_set, engine_cfg, report))
        isrcs = [str(item.metadata.get("isrc", "")) for item in train_set.items]
        forget_pos = [i for i, isrc in enumerate(isrcs) if isrc in forget_isrcs]
        retain_pos = [i for i, isrc in enumerate(isrcs) if isrc not in forget_isrcs]
        forget_items = [encoded[i] for i in forget_pos]
        retain_items = [encoded[i] for i in retain_pos]
        fisher = None
        if cfg.method == "fisher":
            fisher = loaded.store.fisher(model, encoded, train_set, engine_cfg, report)
        weights = engine.forget(
            model, forget_items, retain_items, engine_cfg, cfg, fisher=fisher,
            state_path=folder / "state.pt", progress=report,
        )  # fmt: skip
        parent_dir = Path(parent.checkpoint_path).parent
        manifest = json.loads((parent_dir / "training_manifest.json").read_text())
        lineage = {
            "parent": parent.name,
            "parent_checkpoint_sha256": parent.checkpoint_sha256,
            "unlearning": unlearning.pk,
            "method": cfg.method,
            "forget_isrcs": sorted(forget_isrcs),
        }
        derived_dir = folder / "checkpoint"
        engine.write_checkpoint(
            model,
            weights,
            parent_dir,
            derived_dir,
            engine.derived_manifest(manifest, parent_dir, forget_isrcs, lineage),
        )
        held_out = encode_items(model, _held_out_items(parent, model), engine_cfg)

        def losses(on) -> dict:
            return {
                "forget": engine.set_losses(on, forget_items, engine_cfg, limits),
                "retain": engine.set_losses(on, retain_items, engine_cfg, limits),
                "held_out": engine.set_losses(on, held_out, engine_cfg, limits),
            }

        report("validate", 0, 4)
        parent_losses = losses(model)
        with parameters_swapped(model, weights):
            derived_losses = losses(model)
        reference_losses = None
        reference_model = None
        if unlearning.retrained_reference is not None:
            ref = unlearning.retrained_reference
            reference_model = load_engine_model(
                Path(ref.checkpoint_path).parent, device=engine_cfg.device,
                text_encoder_dirs=text_encoder_dirs(), weights_file=ref.checkpoint_path,
            )  # fmt: skip
            reference_losses = losses(reference_model)
        report("validate", 1, 4)
        checks = engine.loss_checks(parent_losses, derived_losses, limits, reference_losses)
        prompts = [train_set.items[i].prompt or "music" for i in retain_pos][: limits.generations]
        if prompts:
            before = engine.generation_flatness(model, prompts, limits)
            with parameters_swapped(model, weights):
                after = engine.generation_flatness(model, prompts, limits)
            ref_flat = (
                engine.generation_flatness(reference_model, prompts, limits)
                if reference_model is not None
                else None
            )
            checks["generation_flatness"] = engine.flatness_check(before, after, limits, ref_flat)
        report("validate", 2, 4)
        targets = retain_pos[: limits.self_influence_targets]
        if targets:
            derived_set = load_training_set(derived_dir / "training_manifest.json", model)
            # Each target is a whole attribution: its stages only keep the job's sign of life.
            parent_ranks = engine.own_ranks(
                model, train_set, engine_cfg, targets, loaded.store, progress=heartbeat
            )
            with parameters_swapped(model, weights):
                derived_targets = [retain_pos.index(p) for p in targets]
                derived_ranks = engine.own_ranks(
                    model, derived_set, engine_cfg, derived_targets, progress=heartbeat
                )
            checks["self_influence"] = engine.self_influence_check(
                parent_ranks, derived_ranks, limits
            )
        report("validate", 4, 4)
    except EngineError as exc:
        raise ApplicationError(str(exc), field=exc.field or "unlearning") from exc
    passed = engine.validation_passed(checks)
    metrics = {
        "checks": checks,
        "means": {
            model_name: engine.group_means(found)
            for model_name, found in (
                ("parent", parent_losses),
                ("derived", derived_losses),
                ("retrained", reference_losses or {}),
            )
        },
        "counts": {group: len(v) for group, v in parent_losses.items()},
    }
    reason = (
        f"Derived from {parent.name} by unlearning {unlearning.pk}: opted-out recordings "
        "outside its forget set stay as they were in the parent."
    )
    with transaction.atomic():
        derived = model_version_register(
            name=f"{parent.name} unlearned {unlearning.pk}",
            checkpoint_dir=derived_dir,
            actor=None,
            override_reason=reason,
        )
    return metrics, passed, derived, derived.checkpoint_sha256


@transaction.atomic
def unlearning_promote(
    *, unlearning: Unlearning, actor: User, override_reason: str = ""
) -> Unlearning:
    """Put the derived version in use from now on and retire its parent.

    Refused until the job is ready, when it is already promoted, and when its validation
    did not pass unless ``override_reason`` is given (audited as an override)."""
    unlearning = Unlearning.objects.select_for_update().get(pk=unlearning.pk)
    if unlearning.status != Unlearning.Status.READY or unlearning.derived is None:
        raise ApplicationError(
            f"Unlearning {unlearning.pk} is {unlearning.status}: only a ready derived version "
            "can be promoted.",
            field="status",
        )
    if unlearning.promoted_at is not None:
        raise ApplicationError(
            f"{unlearning.derived.name!r} is in use since {unlearning.promoted_at:%Y-%m-%d %H:%M}.",
            field="status",
        )
    override_reason = (override_reason or "").strip()
    if not unlearning.validation_passed and not override_reason:
        failed = [
            name
            for name, check in (unlearning.metrics.get("checks") or {}).items()
            if check.get("passed") is not True
        ]
        raise ApplicationError(
            f"The validation of {unlearning.derived.name!r} did not pass "
            f"({', '.join(failed) or 'no checks'}); a catalog admin may promote it with a "
            "written reason.",
            field="override_reason",
        )
    now = timezone.now()
    derived = unlearning.derived
    parent = ModelVersion.objects.select_for_update().get(pk=unlearning.parent_id)
    derived.in_use_since = now
    derived.retired_at = None
    derived.save(update_fields=["in_use_since", "retired_at"])
    if parent.retired_at is None:
        parent.retired_at = now
        parent.save(update_fields=["retired_at"])
    unlearning.promoted_at = now
    unlearning.promoted_by = actor if getattr(actor, "is_authenticated", False) else None
    unlearning.override_reason = override_reason if not unlearning.validation_passed else ""
    unlearning.save(update_fields=["promoted_at", "promoted_by", "override_reason"])
    audit_record(
        actor=actor,
        action="unlearning.promote",
        obj=unlearning,
        after={
            "derived": derived.name,
            "derived_checkpoint_sha256": derived.checkpoint_sha256,
            "parent": parent.name,
            "in_use_since": now.isoformat(),
            "validation_passed": unlearning.validation_passed,
        },
    )
    if not unlearning.validation_passed:
        audit_record(
            actor=actor,
            action="unlearning.validation_override",
            obj=unlearning,
            after={"checks": unlearning.metrics.get("checks")},
            reason=override_reason,
        )
    return unlearning
