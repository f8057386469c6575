"""Verification of the ledger, recorded in the audit trail (finance)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger import services
from ledger.apis.common import IsFinance


def _anchor_list(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.RegexField(r"^\d{1,18}:[0-9A-Fa-f]{64}$", max_length=83),
        required=False,
        default=list,
        max_length=1000,
        help_text=help_text,
    )


def _anchors(value: list[str]) -> dict[int, str]:
    return {int(seq): digest.lower() for seq, _, digest in (v.partition(":") for v in value)}


class VerifyInputSerializer(serializers.Serializer):
    expect = _anchor_list("SEQ:HASH heads recorded earlier: each must still be in the chain")
    expect_audit = _anchor_list(
        "SEQ:HASH audit trail heads recorded earlier: each must still be in its chain"
    )

    def validate_expect(self, value: list[str]) -> dict[int, str]:
        return _anchors(value)

    def validate_expect_audit(self, value: list[str]) -> dict[int, str]:
        return _anchors(value)


class AuditTrailReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    events_checked = serializers.IntegerField()
    first_break = serializers.CharField(allow_null=True, help_text="Null when the trail is OK")
    break_seq = serializers.IntegerField(allow_null=True)
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField(help_text="With head_seq: an anchor for a later run")


class VerifyReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="The journal and the audit trail both verify")
    entries_checked = serializers.IntegerField()
    postings_checked = serializers.IntegerField()
    settlements_checked = serializers.IntegerField()
    first_break = serializers.CharField(allow_null=True, help_text="Null when the ledger is OK")
    break_seq = serializers.IntegerField(allow_null=True)
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField(help_text="With head_seq: an anchor for a later run")
    trial_balance = serializers.DictField(
        child=serializers.IntegerField(), help_text="Per currency, accrual units (must be 0)"
    )
    audit = AuditTrailReportSerializer(help_text="The audit trail's hash chain")


class VerifyApi(APIView):
    """Run ``verify_ledger`` (hash chains of the journal and the audit trail, balances,
    provenance) and record the run in the audit trail, as the Verify page does. Finance
    only."""

    permission_classes = [IsFinance]

    @extend_schema(request=VerifyInputSerializer, responses=VerifyReportSerializer)
    def post(self, request):
        params = VerifyInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        report = services.ledger_verification_run(
            actor=request.user,
            anchors=params.validated_data["expect"],
            audit_anchors=params.validated_data["expect_audit"],
        )
        return Response(VerifyReportSerializer(report).data)
