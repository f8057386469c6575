import pytest
from django.core.cache import cache

from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from core.services import roles_ensure
from tests.catalog.factories import RightsHolderFactory, UserFactory


@pytest.fixture(autouse=True)
def clean_cache():
    """The login limiter's counters live in the cache; no test sees another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads, media and staged imports go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DATA_DIR = tmp_path / "data"
    return settings.MEDIA_ROOT


@pytest.fixture
def users(db):
    """One user per role; the rights holder's user acts for a holder of their own."""
    roles_ensure()
    holder_user = UserFactory(username="holder-a", role=RIGHTS_HOLDER)
    RightsHolderFactory(legal_name="Holder A").users.add(holder_user)
    return {
        RIGHTS_HOLDER: holder_user,
        CATALOG_ADMIN: UserFactory(username="catalog-admin", role=CATALOG_ADMIN),
        FINANCE: UserFactory(username="finance", role=FINANCE),
    }
