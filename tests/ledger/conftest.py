import pytest

from tests.ledger import factories


@pytest.fixture
def small_catalog(db):
    """A model version with 12 tracks owned by 3 holders (every 3rd track co-owned)."""
    return factories.catalog_create(tracks=12, holders=3)


@pytest.fixture
def settled_run(small_catalog):
    model_version, _ = small_catalog
    generation = factories.generation_create(model_version=model_version, revenue_minor=1999)
    return factories.run_create(generation=generation, scores=factories.scores_for(12, seed=1))
