"""Which attribution methods a deployment runs, and the per-checkpoint artifacts each reads.

``ATTRIBUTION_METHOD`` pays; the exact method (``AUDIT_METHOD``) can always audit, so a model
version computes the artifacts of both.
"""

from __future__ import annotations

from django.conf import settings

from attribution.models import ModelArtifact

# The exact method: every model version can re-attribute a generation with it (audit).
AUDIT_METHOD = "unlearning"
# The artifacts each method's prepare stage reads.
METHOD_ARTIFACTS = {
    "unlearning": (ModelArtifact.Kind.FISHER, ModelArtifact.Kind.BASE_LOSSES),
    "first_order": (ModelArtifact.Kind.FISHER, ModelArtifact.Kind.FEATURES),
    # the second opinions: the similarity methods and representer points read the training
    # set (its encodings, or its audio) and nothing precomputed
    "audio_similarity": (),
    "activation_similarity": (),
    "representer_points": (),
    "gradient_similarity": (ModelArtifact.Kind.GRADIENTS,),
}
# The engine store's name for each artifact kind, and the engine progress stage that fills it.
STORE_KIND = {
    ModelArtifact.Kind.FISHER: "fisher",
    ModelArtifact.Kind.BASE_LOSSES: "losses",
    ModelArtifact.Kind.FEATURES: "features",
    ModelArtifact.Kind.GRADIENTS: "gradients",
}
STAGE_KIND = {
    "fisher": ModelArtifact.Kind.FISHER,
    "base_losses": ModelArtifact.Kind.BASE_LOSSES,
    "features": ModelArtifact.Kind.FEATURES,
    "gradients": ModelArtifact.Kind.GRADIENTS,
}


def artifact_kinds(method_name: str | None = None) -> tuple[str, ...]:
    """The artifacts a method needs; without a method, those of the configured method and of
    the audit method (what a model version computes)."""
    if method_name is not None:
        return METHOD_ARTIFACTS[method_name]
    methods = (settings.ATTRIBUTION_METHOD, AUDIT_METHOD)
    return tuple(dict.fromkeys(kind for name in methods for kind in METHOD_ARTIFACTS.get(name, ())))
