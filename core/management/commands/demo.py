"""``manage.py demo``: the platform's main job on the embedded default.

Creates (or refreshes) the demo users, one per role, and prints how to log in. Later
stages of the pipeline (catalog, model, attribution, ledger) hook in here as they land.
"""

from django.core.management.base import BaseCommand

from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from core.services import user_create_or_update

DEMO_USERS = (
    # username, password, role, is_staff, is_superuser
    ("admin", "demo-admin-pass", None, True, True),
    ("catalog", "demo-catalog-pass", CATALOG_ADMIN, True, False),
    ("finance", "demo-finance-pass", FINANCE, False, False),
    ("holder", "demo-holder-pass", RIGHTS_HOLDER, False, False),
)


class Command(BaseCommand):
    help = "Run the main job on the embedded default: demo users (more stages as they land)."

    def handle(self, *args, **options) -> None:
        for username, password, role, is_staff, is_superuser in DEMO_USERS:
            user_create_or_update(
                username=username,
                password=password,
                role=role,
                is_staff=is_staff,
                is_superuser=is_superuser,
            )
        self.stdout.write(self.style.SUCCESS("Demo users ready:"))
        for username, password, role, _, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<8} password {password:<18} role {role or 'superuser'}")
        self.stdout.write(
            "Open the web pages: ./run serve, then http://127.0.0.1:8000/ "
            "(API docs at /api/docs/, admin at /admin/)."
        )
