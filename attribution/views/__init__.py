"""Attribution pages: generation audio, jobs and runs; model versions and their artifacts."""

from attribution.views.generations import (
    generation_audio,
    generation_audit,
    generation_second_opinion,
    job_list,
    job_status,
    require_generation_reader,
    run_rerun,
    run_status_url,
)
from attribution.views.model_versions import (
    ModelVersionForm,
    model_version_compute_artifacts,
    model_version_detail,
    model_version_list,
    model_version_register_page,
    model_version_status,
)
from attribution.views.unlearning import (
    model_version_unlearn,
    unlearning_detail,
    unlearning_promote_view,
    unlearning_status_view,
)

__all__ = [
    "ModelVersionForm",
    "generation_audio",
    "generation_audit",
    "generation_second_opinion",
    "job_list",
    "job_status",
    "model_version_compute_artifacts",
    "model_version_detail",
    "model_version_list",
    "model_version_register_page",
    "model_version_status",
    "model_version_unlearn",
    "require_generation_reader",
    "run_rerun",
    "run_status_url",
    "unlearning_detail",
    "unlearning_promote_view",
    "unlearning_status_view",
]
