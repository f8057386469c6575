"""``manage.py migrate``, connected as the schema's owner when ``DATABASE_OWNER_URL`` is set.

Django's own command otherwise; after migrating, ``core.database_roles`` grants the
application's role (``DATABASE_URL``'s user) its privileges.
"""

from django.core.management.commands.migrate import Command as DjangoMigrateCommand

from core.database_roles import connected_as_owner


class Command(DjangoMigrateCommand):
    def handle(self, *args, **options):
        with connected_as_owner(options["database"]):
            return super().handle(*args, **options)
