"""The catalog import: in one request (files or a server folder), or in two steps (check
uploaded files, then confirm the same files). Catalog admins only."""

from pathlib import Path

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis.common import IsCatalogAdmin
from catalog.importing import KINDS
from catalog.selectors import staged_import_get
from catalog.services import (
    catalog_import_confirm,
    catalog_import_files,
    catalog_import_folder,
    catalog_import_stage,
    import_upload_check,
)
from core.exceptions import ApplicationError


class ImportApi(APIView):
    """Import catalog files (multipart fields named after the kinds), or a server folder.

    ``dry_run=true`` checks only. Answers 200 with the report when the files are (or would
    be) applied, 400 with the same report when any row has a problem (nothing changed).
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
        responses={
            200: OpenApiResponse(description="The import report (applied or dry run)"),
            400: OpenApiResponse(description="The import report listing problems by row"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dry_run = data.validated_data["dry_run"]
        files = {kind: request.FILES[kind] for kind in KINDS if kind in request.FILES}
        for kind, upload in files.items():
            import_upload_check(kind=kind, upload=upload)
        if data.validated_data.get("folder"):
            if files:
                raise ApplicationError("send files or a folder, not both", field="folder")
            report = catalog_import_folder(
                folder=data.validated_data["folder"], actor=request.user, dry_run=dry_run
            )
        else:
            if not files:
                raise ApplicationError(
                    f"send at least one file field named {', '.join(KINDS)}", field="files"
                )
            base_dir = data.validated_data.get("base_dir")
            report = catalog_import_files(
                files=files,
                actor=request.user,
                dry_run=dry_run,
                base_dirs={kind: Path(base_dir) for kind in files} if base_dir else None,
            )
        return Response(
            report.as_dict(),
            status=status.HTTP_200_OK if report.ok else status.HTTP_400_BAD_REQUEST,
        )


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


class StagedImportSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Names this check; confirm it with this token")
    state = serializers.ChoiceField(choices=["checked", "applied"])
    ok = serializers.BooleanField()
    can_confirm = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    audio_folder = serializers.CharField()
    files = serializers.DictField(child=StagedFileSerializer())
    summary = serializers.CharField()
    report = ImportReportSerializer()
    isrcs = serializers.ListField(child=serializers.CharField())
    batch_id = serializers.IntegerField(allow_null=True)
    replaces = serializers.CharField()


def _staged_or_404(request, token: str):
    staged = staged_import_get(token=token, user=request.user)
    if staged is None:
        raise Http404("No such checked import.")
    return staged


class ImportCheckApi(APIView):
    """Step 1 of an import: upload CSV/XLSX files (multipart fields named after the kinds);
    they are checked row by row and kept on the server; nothing is imported.

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
        responses={201: StagedImportSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        replaces = data.validated_data.get("replaces")
        staged = catalog_import_stage(
            files={kind: request.FILES[kind] for kind in KINDS if kind in request.FILES},
            actor=request.user,
            audio_folder=data.validated_data.get("audio_folder", ""),
            replacing=_staged_or_404(request, replaces) if replaces else None,
        )
        return Response(StagedImportSerializer(staged).data, status=status.HTTP_201_CREATED)


class StagedImportApi(APIView):
    """A check you made: its per-row report, and whether it can be (or was) confirmed."""

    permission_classes = [IsCatalogAdmin]

    @extend_schema(responses=StagedImportSerializer)
    def get(self, request, token: str):
        return Response(StagedImportSerializer(_staged_or_404(request, token)).data)


class ImportConfirmApi(APIView):
    """Step 2: import exactly the files that were checked (all or nothing; idempotent).

    200 when imported (or already imported); 400 with the new report when the catalog
    changed since the check and a row now has a problem (nothing imported).
    """

    permission_classes = [IsCatalogAdmin]

    @extend_schema(
        request=None,
        responses={200: StagedImportSerializer, 400: StagedImportSerializer},
    )
    def post(self, request, token: str):
        staged = catalog_import_confirm(staged=_staged_or_404(request, token), actor=request.user)
        return Response(
            StagedImportSerializer(staged).data,
            status=status.HTTP_200_OK if staged.applied else status.HTTP_400_BAD_REQUEST,
        )
