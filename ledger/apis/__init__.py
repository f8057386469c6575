"""REST API of the ledger (under ``/ledger/api/``; token or session auth).

Finance (and superusers) read everything, create and close statement periods and run
payout batches; a rights holder's users read the balances and statements of the rights
holders they act for and generate those statements (another holder's is 404). Writes go
through ``ledger.services``, which audit them.

One module per resource: ``accounts``, ``journal``, ``statements``, ``balances``,
``verification``, ``periods``, ``payouts``, ``generations`` (one generation with what it
paid, under ``/attribution/api/``); ``common`` holds the finance permission and the file
renderers.
"""

from ledger.apis.accounts import AccountSerializer, AccountViewSet
from ledger.apis.balances import BalanceApi, BalanceRowSerializer, BalancesSerializer
from ledger.apis.common import MAX_ID, XLSX, CSVRenderer, IsFinance, PDFRenderer, XLSXRenderer
from ledger.apis.generations import (
    AttributedTrackSerializer,
    GenerationDetailApi,
    GenerationDetailSerializer,
    GenerationEvidenceApi,
)
from ledger.apis.journal import (
    JournalEntryDetailSerializer,
    JournalEntrySerializer,
    JournalEntryViewSet,
    PostingSerializer,
    SettlementDetailSerializer,
    SettlementHolderSerializer,
    SettlementSerializer,
    SettlementTrackSerializer,
)
from ledger.apis.payouts import (
    PayoutBatchCreateSerializer,
    PayoutBatchSerializer,
    PayoutBatchViewSet,
    PayoutLineFailSerializer,
    PayoutLineSerializer,
)
from ledger.apis.periods import (
    StatementPeriodCreateSerializer,
    StatementPeriodSerializer,
    StatementPeriodViewSet,
)
from ledger.apis.statements import (
    StatementAvailableQuerySerializer,
    StatementGenerateSerializer,
    StatementRowSerializer,
    StatementSerializer,
    StatementViewSet,
)
from ledger.apis.verification import VerifyApi, VerifyInputSerializer, VerifyReportSerializer

__all__ = [
    "MAX_ID",
    "XLSX",
    "AccountSerializer",
    "AccountViewSet",
    "AttributedTrackSerializer",
    "BalanceApi",
    "BalanceRowSerializer",
    "BalancesSerializer",
    "CSVRenderer",
    "GenerationDetailApi",
    "GenerationDetailSerializer",
    "GenerationEvidenceApi",
    "IsFinance",
    "JournalEntryDetailSerializer",
    "JournalEntrySerializer",
    "JournalEntryViewSet",
    "PDFRenderer",
    "PayoutBatchCreateSerializer",
    "PayoutBatchSerializer",
    "PayoutBatchViewSet",
    "PayoutLineFailSerializer",
    "PayoutLineSerializer",
    "PostingSerializer",
    "SettlementDetailSerializer",
    "SettlementHolderSerializer",
    "SettlementSerializer",
    "SettlementTrackSerializer",
    "StatementAvailableQuerySerializer",
    "StatementGenerateSerializer",
    "StatementPeriodCreateSerializer",
    "StatementPeriodSerializer",
    "StatementPeriodViewSet",
    "StatementRowSerializer",
    "StatementSerializer",
    "StatementViewSet",
    "VerifyApi",
    "VerifyInputSerializer",
    "VerifyReportSerializer",
    "XLSXRenderer",
]
