"""The catalog import, run in the background: upload files (or name a server folder),
the batch is checked by a task, then imported by a task once confirmed (or at once, with
the one-step endpoint). Every POST answers 202 with the batch and its URL; GET the batch
for its status, progress and per-row report. Catalog admins only."""

from pathlib import Path

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis.common import IsCatalogAdmin
from catalog.importing import KINDS
from catalog.models import ImportBatch
from catalog.selectors import import_batch_get
from catalog.services import (
    catalog_import_confirm,
    catalog_import_stage,
    import_folder_files,
)
from catalog.services.common import is_folder
from core.exceptions import ApplicationError


def _batch_response(request, batch: ImportBatch, *, code: int | None = None) -> Response:
    batch.refresh_from_db()  # without a broker the task ran already
    url = request.build_absolute_uri(reverse("catalog:api-import-staged", args=[batch.token]))
    if code is None:
        code = status.HTTP_202_ACCEPTED if batch.in_progress else status.HTTP_200_OK
    return Response(
        ImportBatchSerializer(batch, context={"url": url}).data,
        status=code,
        headers={"Location": url},
    )


class ImportApi(APIView):
    """Import catalog files in one step (multipart fields named after the kinds), or the
    files of a server folder (``folder``): the batch is checked and, when no row has a
    problem, imported, all by background tasks. ``dry_run=true`` checks only.

    Answers 202 with the batch and its URL (also in ``Location``); GET that URL until
    ``status`` is ``applied``, ``checked`` (a dry run, or problems listed by row in
    ``report``; nothing imported) or ``failed`` (``error``; nothing imported).
    """

    permission_classes = [IsCatalogAdmin]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        dry_run = serializers.BooleanField(required=False, default=False)
        folder = serializers.CharField(required=False)
        base_dir = serializers.CharField(required=False, help_text="folder for relative audio")

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    **{kind: {"type": "string", "format": "binary"} for kind in KINDS},
                    "dry_run": {"type": "boolean"},
                    "folder": {"type": "string"},
                    "base_dir": {"type": "string"},
                },
            }
        },
        responses={202: OpenApiResponse(response=None, description="See ImportBatch")},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dry_run = data.validated_data["dry_run"]
        files: dict = {kind: request.FILES[kind] for kind in KINDS if kind in request.FILES}
        audio_folder = data.validated_data.get("base_dir", "")
        folder = data.validated_data.get("folder")
        if folder:
            if files:
                raise ApplicationError("send files or a folder, not both", field="folder")
            if not is_folder(folder):
                raise ApplicationError(f"{folder!r} is not a folder", field="folder")
            files = import_folder_files(Path(folder))
            if not files:
                raise ApplicationError(
                    f"folder {folder!r} has none of {', '.join(k + '.csv' for k in KINDS)}",
                    field="folder",
                )
            audio_folder = audio_folder or folder
        elif not files:
            raise ApplicationError(
                f"send at least one file field named {', '.join(KINDS)}", field="files"
            )
        batch = catalog_import_stage(
            files=files,
            actor=request.user,
            audio_folder=audio_folder,
            confirm_when_checked=not dry_run,
        )
        return _batch_response(request, batch, code=status.HTTP_202_ACCEPTED)


class ImportProblemSerializer(serializers.Serializer):
    file = serializers.CharField(help_text="rights_holders, recordings or ownership_shares")
    row = serializers.IntegerField(
        allow_null=True, help_text="Spreadsheet row (header = 1); null for the whole file"
    )
    column = serializers.CharField()
    problem = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    applied = serializers.BooleanField()
    kinds = serializers.ListField(child=serializers.CharField())
    rows = serializers.IntegerField()
    created = serializers.DictField(child=serializers.IntegerField())
    updated = serializers.DictField(child=serializers.IntegerField())
    unchanged = serializers.DictField(child=serializers.IntegerField())
    batch_id = serializers.IntegerField(allow_null=True)
    problems = ImportProblemSerializer(many=True)


class StagedFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    bytes = serializers.IntegerField()


class ImportBatchSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Names this batch; confirm it with this token")
    url = serializers.SerializerMethodField(help_text="GET it for status and progress")
    status = serializers.ChoiceField(
        choices=ImportBatch.Status.choices,
        help_text="checking -> checked -> importing -> applied; or failed",
    )
    phase = serializers.CharField(help_text="What the task is doing, e.g. 'check recordings'")
    processed = serializers.IntegerField(help_text="Rows done in this phase")
    total = serializers.IntegerField(allow_null=True, help_text="Rows in this phase")
    percent_done = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(help_text="Why it failed, or why it was not imported")
    ok = serializers.BooleanField(help_text="The last check found no problem")
    can_confirm = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    audio_folder = serializers.CharField()
    files = serializers.DictField(child=StagedFileSerializer())
    summary = serializers.CharField()
    report = ImportReportSerializer(
        source="checked_report", allow_null=True, help_text="null until checked"
    )
    isrcs = serializers.ListField(child=serializers.CharField())
    batch_id = serializers.IntegerField(source="pk")
    replaces = serializers.CharField(source="replaces.token", allow_null=True, default=None)

    def get_url(self, batch) -> str:
        return self.context.get("url", "")


def _batch_or_404(request, token: str) -> ImportBatch:
    batch = import_batch_get(token=token, user=request.user)
    if batch is None:
        raise Http404("No such import batch.")
    return batch


class ImportCheckApi(APIView):
    """Step 1 of an import: upload CSV/XLSX files (multipart fields named after the kinds);
    they are kept on the server and checked row by row by a background task; nothing is
    imported. Answers 202 with the batch and its URL: GET it until ``status`` is
    ``checked`` (the per-row ``report``) or ``failed``.

    With ``replaces`` (the token of an earlier check), kinds not uploaded again are taken
    from that check, so a corrected file can be sent alone. Confirm with
    ``POST /catalog/api/imports/<token>/confirm/``.
    """

    permission_classes = [IsCatalogAdmin]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        audio_folder = serializers.CharField(required=False, allow_blank=True)
        replaces = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    **{kind: {"type": "string", "format": "binary"} for kind in KINDS},
                    "audio_folder": {"type": "string"},
                    "replaces": {"type": "string"},
                },
            }
        },
        responses={202: ImportBatchSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        replaces = data.validated_data.get("replaces")
        batch = catalog_import_stage(
            files={kind: request.FILES[kind] for kind in KINDS if kind in request.FILES},
            actor=request.user,
            audio_folder=data.validated_data.get("audio_folder", ""),
            replacing=_batch_or_404(request, replaces) if replaces else None,
        )
        return _batch_response(request, batch, code=status.HTTP_202_ACCEPTED)


class StagedImportApi(APIView):
    """An import batch you sent: its status, the progress of its task, its per-row report,
    and whether it can be (or was) confirmed."""

    permission_classes = [IsCatalogAdmin]

    @extend_schema(responses=ImportBatchSerializer)
    def get(self, request, token: str):
        return _batch_response(request, _batch_or_404(request, token), code=status.HTTP_200_OK)


class ImportConfirmApi(APIView):
    """Step 2: import exactly the files that were checked, all or nothing, by a background
    task (idempotent: confirming again changes nothing).

    202 while importing (GET the batch's URL for progress), 200 when already imported;
    400 when the batch cannot be imported (still checking, problems found, failed). If the
    catalog changed since the check, the task imports nothing and the batch is ``checked``
    again with the new report and ``error`` saying so.
    """

    permission_classes = [IsCatalogAdmin]

    @extend_schema(
        request=None,
        responses={202: ImportBatchSerializer, 200: ImportBatchSerializer},
    )
    def post(self, request, token: str):
        batch = catalog_import_confirm(batch=_batch_or_404(request, token), actor=request.user)
        return _batch_response(request, batch)
