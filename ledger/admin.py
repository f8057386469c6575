"""Read-only Django admin for the ledger (finance and superusers).

Nothing here writes: the ledger is append-only and every change goes through
``ledger.services`` (the database refuses UPDATE and DELETE anyway).
"""

from django.contrib import admin

from core.roles import FINANCE, user_has_role
from ledger.models import (
    Account,
    JournalEntry,
    PayoutBatch,
    PayoutLine,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
    Statement,
    StatementPeriod,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request):
        return user_has_role(request.user, FINANCE)

    def has_view_permission(self, request, obj=None):
        return user_has_role(request.user, FINANCE)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["index", "account", "currency", "amount"]
    readonly_fields = fields


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["key", "kind", "currency", "rights_holder", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["key", "rights_holder__legal_name"]


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "kind", "currency", "effective_at", "generation", "memo", "hash"]
    list_filter = ["kind", "currency"]
    search_fields = ["memo", "hash"]
    date_hierarchy = "effective_at"
    inlines = [PostingInline]


class TrackLineInline(ReadOnlyInline):
    model = SettlementTrackLine
    fields = ["position", "recording", "weight", "amount"]
    readonly_fields = fields


class HolderLineInline(ReadOnlyInline):
    model = SettlementHolderLine
    fields = ["rights_holder", "amount", "tracks", "reference_parts"]
    readonly_fields = fields


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = ["journal_entry", "generation", "attribution_run", "currency", "pool"]
    list_filter = ["currency"]
    inlines = [TrackLineInline, HolderLineInline]


@admin.register(StatementPeriod)
class StatementPeriodAdmin(ReadOnlyAdmin):
    list_display = ["starts_at", "ends_at", "closed_at"]


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ["rights_holder", "period", "currency", "opening_balance", "closing_balance"]
    list_filter = ["currency"]
    search_fields = ["rights_holder__legal_name"]


class PayoutLineInline(ReadOnlyInline):
    model = PayoutLine
    fields = ["rights_holder", "amount_minor", "status", "failure_reason"]
    readonly_fields = fields


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "currency", "status", "threshold_minor", "created_at", "paid_at"]
    list_filter = ["status", "currency"]
    inlines = [PayoutLineInline]
