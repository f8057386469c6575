"""Attribution methods, looked up by name; each implements `pipeline.AttributionMethod`.

A run records its method's name, and every stage of the run (on any worker) looks the method up
here, so a new method plugs in by adding it to `METHODS`, without touching the tasks.
"""

from __future__ import annotations

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.items import QueryItem, TrainingSet
from attribution.engine.loss import Progress
from attribution.engine.methods.activation_similarity import ActivationSimilarityMethod
from attribution.engine.methods.audio_similarity import AudioSimilarityMethod
from attribution.engine.methods.first_order import FirstOrderMethod
from attribution.engine.methods.gradient_similarity import GradientSimilarityMethod
from attribution.engine.methods.representer_points import RepresenterPointsMethod
from attribution.engine.methods.unlearning import UnlearningMethod
from attribution.engine.pipeline import AttributionMethod, attribute
from attribution.engine.scoring import Scores

METHODS: dict[str, AttributionMethod] = {
    method.name: method
    for method in (
        UnlearningMethod(),
        FirstOrderMethod(),
        # second opinions (Sec. 3.3): they pay nothing unless configured to
        AudioSimilarityMethod(),
        ActivationSimilarityMethod(),
        RepresenterPointsMethod(),
        GradientSimilarityMethod(),
    )
}


def method_named(name: str) -> AttributionMethod:
    """The attribution method called `name`; refuses an unknown name, listing the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise EngineError(
            f"Unknown attribution method {name!r} (known: {known}).", field="method"
        ) from None


def unlearning_scores(
    model: EngineModel,
    query: QueryItem,
    train_set: TrainingSet,
    cfg: EngineConfig,
    progress: Progress | None = None,
    *,
    store: ArtifactStore | None = None,
) -> Scores:
    """Eq. 2 scores of every training item for a query, every stage in one process."""
    return attribute(METHODS["unlearning"], model, query, train_set, cfg, progress, store=store)


__all__ = ["METHODS", "AttributionMethod", "method_named", "unlearning_scores"]
