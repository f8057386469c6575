"""Generations and their attribution: the only door from Django to the engine.

One module per aggregate: ``model_versions`` (registering a checkpoint and its training
set, the status of its artifacts), ``generations`` (recording and generating audio),
``runs`` (the attribution pipeline's stages as idempotent task steps, settlement runs and
audits), ``dispatch`` and ``reconcile`` (handing steps to the broker, and sending overdue
ones again), ``artifacts`` (computing a model version's per-checkpoint artifacts; which
artifacts each method reads is ``attribution.methods``), ``workers`` (the model a worker
keeps loaded) and ``progress``.
"""

from attribution.methods import AUDIT_METHOD, artifact_kinds
from attribution.services.artifacts import (
    model_version_artifacts_compute,
    model_version_artifacts_mark_stale,
    model_version_artifacts_missing,
    model_version_artifacts_queue,
)
from attribution.services.generations import (
    generation_generate,
    generation_record,
    wav_float_bytes,
)
from attribution.services.model_versions import (
    ARTIFACT_TRANSITIONS,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    MANIFEST_FILE,
    model_artifact_update,
    model_version_register,
)
from attribution.services.progress import ThrottledProgress, TimeLimitExceededError
from attribution.services.reconcile import ReconcileReport, attribution_runs_reconcile
from attribution.services.references import (
    ReferenceDeclaration,
    reference_audio_load,
    references_resolve,
)
from attribution.services.runs import (
    ShardPlan,
    attribution_run_audit,
    attribution_run_fail,
    attribution_run_finish,
    attribution_run_mark_retrying,
    attribution_run_prepare,
    attribution_run_queue,
    attribution_run_rerun,
    attribution_run_score_shard,
    attribution_run_second_opinion,
    generation_query,
)
from attribution.services.unlearning import (
    unlearning_fail,
    unlearning_promote,
    unlearning_request,
    unlearning_run,
)
from attribution.services.workers import (
    ArtifactsNotReadyError,
    LoadedModel,
    engine_config,
    loaded_model_for,
    loaded_models_clear,
    run_engine_config,
    text_encoder_dirs,
)

__all__ = [
    "ARTIFACT_TRANSITIONS",
    "AUDIT_METHOD",
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "ArtifactsNotReadyError",
    "LoadedModel",
    "ReconcileReport",
    "ReferenceDeclaration",
    "ShardPlan",
    "ThrottledProgress",
    "TimeLimitExceededError",
    "artifact_kinds",
    "attribution_run_audit",
    "attribution_run_fail",
    "attribution_run_finish",
    "attribution_run_mark_retrying",
    "attribution_run_prepare",
    "attribution_run_queue",
    "attribution_run_rerun",
    "attribution_run_score_shard",
    "attribution_run_second_opinion",
    "attribution_runs_reconcile",
    "engine_config",
    "generation_generate",
    "generation_query",
    "generation_record",
    "loaded_model_for",
    "loaded_models_clear",
    "model_artifact_update",
    "model_version_artifacts_compute",
    "model_version_artifacts_mark_stale",
    "model_version_artifacts_missing",
    "model_version_artifacts_queue",
    "model_version_register",
    "reference_audio_load",
    "references_resolve",
    "run_engine_config",
    "text_encoder_dirs",
    "unlearning_fail",
    "unlearning_promote",
    "unlearning_request",
    "unlearning_run",
    "wav_float_bytes",
]
