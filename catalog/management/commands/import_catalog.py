"""Import rights holders, recordings and ownership shares from CSV/XLSX files.

    manage.py import_catalog --kind rights_holders holders.csv [--dry-run]
    manage.py import_catalog --kind recordings recordings.csv --shares shares.csv
    manage.py import_catalog --folder path/to/catalog [--dry-run]

All or nothing: with any bad row nothing changes and the report lists every problem
(file, row, column, problem); the command then exits with status 1. Progress (rows
checked, then rows written, per file) goes to stderr; ``--no-progress`` turns it off.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.importing import KINDS, OWNERSHIP_SHARES
from catalog.management.commands._actor import actor_from_option
from catalog.services import catalog_import_files, catalog_import_folder
from core.exceptions import ApplicationError
from core.progress import StageProgressBars


class Command(BaseCommand):
    help = "Import the catalog from CSV/XLSX files (all or nothing, idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="the file to import (with --kind)")
        parser.add_argument("--kind", choices=KINDS, help="what the file contains")
        parser.add_argument("--shares", help="an ownership_shares file imported together with FILE")
        parser.add_argument(
            "--folder", help="a folder with rights_holders, recordings, ownership_shares"
        )
        parser.add_argument("--dry-run", action="store_true", help="check only, change nothing")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--user", help="username recorded as the actor in the audit trail (default: none)"
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="do not show progress bars on stderr"
        )

    def handle(self, *args, **options):
        actor = actor_from_option(options["user"])
        bars = None if options["no_progress"] else StageProgressBars(self.stderr._out)
        try:
            if options["folder"]:
                if options["file"] or options["kind"]:
                    raise CommandError("give either --folder or --kind FILE, not both")
                report = catalog_import_folder(
                    folder=options["folder"],
                    actor=actor,
                    dry_run=options["dry_run"],
                    progress=bars,
                )
            else:
                if not (options["file"] and options["kind"]):
                    raise CommandError("give --kind and FILE, or --folder")
                files = {options["kind"]: Path(options["file"])}
                if options["shares"]:
                    files[OWNERSHIP_SHARES] = Path(options["shares"])
                report = catalog_import_files(
                    files=files, actor=actor, dry_run=options["dry_run"], progress=bars
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        finally:
            if bars is not None:
                bars.close()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            for problem in report.problems:
                where = f"row {problem.row}" if problem.row else "file"
                column = f", column {problem.column}" if problem.column else ""
                self.stdout.write(f"{problem.kind}: {where}{column}: {problem.problem}")
            self.stdout.write(report.summary())
        if not report.ok:
            raise CommandError("import refused; nothing was changed", returncode=1)
