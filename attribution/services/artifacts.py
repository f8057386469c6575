"""A model version's per-checkpoint artifacts (for unlearning: the Fisher and theta0 losses;
for the first-order method: the Fisher and the gradient features).

Computing them is the attribution methods' prepare stage, run once per model version on a GPU
worker; every run then finds them in the engine's artifact store. They are computed for the
configured method and for the exact method (``AUDIT_METHOD``), so that any generation can be
re-attributed exactly. ``ModelArtifact`` rows record their status, progress and file for the
pages.

While a worker computes them it gives a sign of life at least every ``HEARTBEAT_SECONDS``
(``heartbeat_at``, ``progress.Heartbeat``); a computation that stops (its worker killed, its
message lost by the broker) is sent again by the reconciler (``reconcile``).
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from attribution.methods import (
    AUDIT_METHOD,
    STAGE_KIND,
    STORE_KIND,
    artifact_kinds,
)
from attribution.models import ModelArtifact, ModelVersion
from attribution.services.dispatch import artifacts_compute_send
from attribution.services.progress import Heartbeat, ThrottledProgress
from attribution.services.workers import (
    configured_method,
    engine_config,
    loaded_model_for,
    method_for,
)
from core.exceptions import ApplicationError
from core.services import audit_record


def model_version_artifacts_heartbeat(*, model_version_id: int) -> None:
    """A sign of life from the worker computing a model version's artifacts (also while the
    progress bar does not move), so that the reconciler leaves the computation alone."""
    ModelArtifact.objects.filter(
        model_version_id=model_version_id, status=ModelArtifact.Status.COMPUTING
    ).update(heartbeat_at=timezone.now())


def model_version_artifacts_compute(
    *, model_version: ModelVersion, actor: AbstractBaseUser | None = None, progress=None
) -> dict[str, ModelArtifact]:
    """Compute (or resume, or reuse) the artifacts of a model version for the configured
    method and engine configuration.

    ``progress(stage, done, total)``, if given, is called too (a command's progress bar).
    Idempotent: ready artifacts are returned as they are.
    """
    from attribution.services.model_versions import model_artifact_update

    kinds = artifact_kinds()
    current = {a.kind: a for a in model_version.artifacts.all()}
    if all(
        current.get(kind) is not None and current[kind].status == ModelArtifact.Status.READY
        for kind in kinds
    ):
        return current

    def mark(kind: str, status: str, **fields) -> ModelArtifact:
        return model_artifact_update(
            model_version=model_version, kind=kind, status=status, actor=actor, **fields
        )

    for kind in kinds:
        if current.get(kind) is None or current[kind].status != ModelArtifact.Status.READY:
            mark(kind, ModelArtifact.Status.COMPUTING, progress_percent=0)
    heartbeat = Heartbeat(
        lambda: model_version_artifacts_heartbeat(model_version_id=model_version.pk)
    )
    heartbeat.beat()
    writers = {
        kind: ThrottledProgress(
            lambda stage, percent, kind=kind: mark(
                kind, ModelArtifact.Status.COMPUTING, progress_percent=percent
            )
        )
        for kind in kinds
    }

    def report(stage: str, done: int, total: int) -> None:
        heartbeat()
        if stage in STAGE_KIND and STAGE_KIND[stage] in writers:
            writers[STAGE_KIND[stage]](stage, done, total)
        if progress is not None:
            progress(stage, done, total)

    try:
        cfg = engine_config()
        loaded = loaded_model_for(model_version, device=cfg.device)
        for name in dict.fromkeys((configured_method().name, AUDIT_METHOD)):
            loaded.prepare(method_for(name), cfg, report, compute=True)
        results: dict[str, ModelArtifact] = {}
        for kind in kinds:
            path = loaded.store.artifact_file(loaded.model, STORE_KIND[kind], loaded.train_set, cfg)
            results[kind] = mark(
                kind, ModelArtifact.Status.READY, progress_percent=100, path=str(path)
            )
        return results
    except ApplicationError as exc:
        for kind in kinds:
            mark(kind, ModelArtifact.Status.FAILED, error=str(exc))
        raise ApplicationError(str(exc), field="model_version") from exc


@transaction.atomic
def model_version_artifacts_queue(
    *, model_version: ModelVersion, actor: AbstractBaseUser | None, reason: str = ""
) -> list[ModelArtifact]:
    """A catalog admin (or an operator's command: no actor) asks for a model version's
    artifacts.

    The artifacts not ready yet are marked computing (0 %) and
    ``attribution.compute_model_artifacts`` is sent to the broker once the transaction
    commits (a GPU worker then fills in the progress). Refused when all are ready, or while one is
    already being computed (a second job would do the same work twice).
    """
    from attribution.services.model_versions import model_artifact_update

    ModelVersion.objects.select_for_update().filter(pk=model_version.pk).first()
    kinds = artifact_kinds()
    current = {a.kind: a for a in model_version.artifacts.all()}
    busy = [
        k for k in kinds if k in current and current[k].status == ModelArtifact.Status.COMPUTING
    ]
    if busy:
        raise ApplicationError(
            f"Model version {model_version.name!r} is already computing "
            f"{', '.join(ModelArtifact.Kind(k).label for k in busy)}. If no worker is "
            f"working on it, run: manage.py compute_model_artifacts {model_version.pk}"
        )
    pending = [
        kind
        for kind in kinds
        if current.get(kind) is None or current[kind].status != ModelArtifact.Status.READY
    ]
    if not pending:
        raise ApplicationError(
            f"The artifacts of model version {model_version.name!r} are already computed."
        )
    artifacts = [
        model_artifact_update(
            model_version=model_version,
            kind=kind,
            status=ModelArtifact.Status.COMPUTING,
            actor=actor,
            progress_percent=0,
        )
        for kind in pending
    ]
    audit_record(
        actor=actor,
        action="model_version.artifacts_queue",
        obj=model_version,
        after={"kinds": pending},
        reason=reason,
    )
    # After the commit; a broker that refuses it leaves the artifacts computing and
    # unsent, and the reconciler sends the computation once the broker answers.
    transaction.on_commit(lambda: artifacts_compute_send(model_version_id=model_version.pk))
    return artifacts


def model_version_artifacts_mark_stale(*, model_version: ModelVersion, reason: str) -> None:
    """The artifacts on record do not fit the engine configuration runs now use (a run found
    none for its configuration): mark them failed, so that the pages, the API and
    ``compute_model_artifacts`` offer to compute them again instead of calling them ready.
    The reason stays on the rows."""
    from attribution.services.model_versions import model_artifact_update

    for kind in artifact_kinds():
        model_artifact_update(
            model_version=model_version,
            kind=kind,
            status=ModelArtifact.Status.MISSING,
            actor=None,
            error=reason,
        )


def model_version_artifacts_missing(
    model_version: ModelVersion, method_name: str | None = None
) -> list[str]:
    """Labels of the artifacts a model version still lacks (not ready, or file gone) for a
    method, or for every method it computes artifacts for."""
    ready = {
        a.kind
        for a in model_version.artifacts.all()
        if a.status == ModelArtifact.Status.READY and a.path and Path(a.path).is_file()
    }
    labels = dict(ModelArtifact.Kind.choices)
    return [labels[kind] for kind in artifact_kinds(method_name) if kind not in ready]
