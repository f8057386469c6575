"""Django admin for the catalog, usable by users in the ``catalog_admin`` group.

Writes go through ``catalog.services`` so the admin keeps the same rules (shares sum to
100, identifiers normalized) and leaves the same audit trail as the API and imports.
Recordings are added by importing files (audio is checked and hashed there).
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from catalog.models import (
    ImportBatch,
    OptOut,
    OwnershipShare,
    Recording,
    ReferenceLicence,
    RightsHolder,
)
from catalog.services import (
    HOLDER_FIELDS,
    ShareSpec,
    opt_out_create,
    opt_out_withdraw,
    recording_shares_set,
    recording_update,
    reference_licence_grant,
    reference_licence_withdraw,
    rights_holder_create,
    rights_holder_update,
    shares_problems,
)
from catalog.validators import (
    currency_normalize,
    ipi_normalize,
    isni_normalize,
    iswc_normalize,
)
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role


class CatalogAdminPermissions:
    """Catalog admins (and superusers) may view and change; nobody else sees these pages."""

    def has_module_permission(self, request):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_view_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_add_permission(self, request, *args):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_change_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_delete_permission(self, request, obj=None):
        return False  # records others are paid from are never deleted from the admin


class ReadOnlyMixin(CatalogAdminPermissions):
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _normalizing_clean(field, normalize):
    def clean(self):
        value = self.cleaned_data.get(field, "")
        if not value:
            return ""
        return normalize(value)

    return clean


class RightsHolderForm(forms.ModelForm):
    # Wider than the stored compact form so identifiers can be typed with spaces or dashes.
    isni = forms.CharField(max_length=32, required=False, label="ISNI")
    ipi = forms.CharField(max_length=32, required=False, label="IPI name number")

    class Meta:
        model = RightsHolder
        fields = [*HOLDER_FIELDS, "users"]

    clean_isni = _normalizing_clean("isni", isni_normalize)
    clean_ipi = _normalizing_clean("ipi", ipi_normalize)
    clean_payout_currency = _normalizing_clean("payout_currency", currency_normalize)


@admin.register(RightsHolder)
class RightsHolderAdmin(CatalogAdminPermissions, admin.ModelAdmin):
    form = RightsHolderForm
    list_display = ("legal_name", "kind", "isni", "ipi", "payout_currency", "is_active")
    list_filter = ("kind", "is_active", "payout_currency")
    search_fields = ("legal_name", "isni", "ipi", "contact_email")
    filter_horizontal = ("users",)
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name] for name in HOLDER_FIELDS if name in form.cleaned_data
        }
        users = list(form.cleaned_data.get("users", []))
        if change:
            saved = rights_holder_update(holder=obj, data=data, users=users, actor=request.user)
        else:
            data.pop("is_active", None)
            saved = rights_holder_create(**data, users=users, actor=request.user)
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        pass  # users were set by the service


class OwnershipShareFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        percents = []
        holders = []
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            percents.append(form.cleaned_data["percent"])
            holders.append(form.cleaned_data["rights_holder"].pk)
        if len(set(holders)) != len(holders):
            raise ValidationError("A rights holder appears twice.")
        problems = shares_problems([Decimal(p) for p in percents])
        if problems:
            raise ValidationError("; ".join(problems))

    def share_specs(self) -> list[ShareSpec]:
        return [
            ShareSpec(form.cleaned_data["rights_holder"], form.cleaned_data["percent"])
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


class OwnershipShareInline(admin.TabularInline):
    model = OwnershipShare
    formset = OwnershipShareFormSet
    extra = 1
    min_num = 1
    autocomplete_fields = ("rights_holder",)

    def has_view_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_add_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_change_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_delete_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)


class ReadOnlyInline(admin.TabularInline):
    """Rows a service wrote, shown to catalog admins under their parent; all of
    ``fields`` are read only, and none is added or deleted here."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None):
        return user_has_role(request.user, CATALOG_ADMIN)

    def has_add_permission(self, request, obj=None):
        return False


class OptOutInline(ReadOnlyInline):
    model = OptOut
    fields = ("rights_holder", "effective_from", "reason", "withdrawn_at")


class RecordingForm(forms.ModelForm):
    iswc = forms.CharField(
        max_length=32, required=False, label="ISWC", help_text="e.g. T-034.524.680-1"
    )

    class Meta:
        model = Recording
        fields = ("title", "iswc")

    clean_iswc = _normalizing_clean("iswc", iswc_normalize)


@admin.register(Recording)
class RecordingAdmin(CatalogAdminPermissions, admin.ModelAdmin):
    form = RecordingForm
    list_display = ("isrc", "title", "iswc", "duration_seconds", "sample_rate", "created_at")
    list_filter = ("sample_rate", "channels", "created_at")
    search_fields = (
        "isrc",
        "title",
        "iswc",
        "audio_sha256",
        "ownership_shares__rights_holder__legal_name",
    )
    fields = (
        "title",
        "iswc",
        "isrc",
        "audio",
        "audio_sha256",
        "duration_seconds",
        "sample_rate",
        "channels",
        "audio_bytes",
        "created_at",
        "updated_at",
    )
    # Only what recording_update may change is editable; the ISRC and audio identify it.
    readonly_fields = tuple(name for name in fields if name not in RecordingForm.Meta.fields)
    inlines = (OwnershipShareInline, OptOutInline)

    def has_add_permission(self, request, *args):
        return False  # recordings come in through the import, which checks the audio

    def save_model(self, request, obj, form, change):
        fields = {"title": form.cleaned_data["title"], "iswc": form.cleaned_data["iswc"]}
        recording_update(recording=obj, data=fields, actor=request.user)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            if isinstance(formset, OwnershipShareFormSet):
                try:
                    recording_shares_set(
                        recording=form.instance, shares=formset.share_specs(), actor=request.user
                    )
                except ApplicationError as exc:
                    messages.error(request, exc.message)
            # The service wrote the rows; the admin's change message reads these.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


class OptOutForm(forms.ModelForm):
    class Meta:
        model = OptOut
        fields = ("rights_holder", "recording", "effective_from", "reason")


@admin.register(OptOut)
class OptOutAdmin(CatalogAdminPermissions, admin.ModelAdmin):
    form = OptOutForm
    list_display = ("rights_holder", "scope_label", "effective_from", "created_at", "withdrawn_at")
    list_filter = ("effective_from", ("withdrawn_at", admin.EmptyFieldListFilter))
    search_fields = ("rights_holder__legal_name", "recording__isrc", "recording__title")
    autocomplete_fields = ("rights_holder", "recording")
    actions = ("withdraw",)

    @admin.display(description="scope")
    def scope_label(self, obj):
        return obj.recording.isrc if obj.recording_id else "whole catalog"

    def has_change_permission(self, request, obj=None):
        return obj is None and user_has_role(request.user, CATALOG_ADMIN)

    def save_model(self, request, obj, form, change):
        saved = opt_out_create(
            rights_holder=form.cleaned_data["rights_holder"],
            recording=form.cleaned_data.get("recording"),
            effective_from=form.cleaned_data["effective_from"],
            reason=form.cleaned_data.get("reason", ""),
            actor=request.user,
        )
        obj.pk = saved.pk

    @admin.action(description="Withdraw selected opt-outs")
    def withdraw(self, request, queryset):
        for opt_out in queryset:
            opt_out_withdraw(opt_out=opt_out, actor=request.user)
        self.message_user(request, f"Withdrew {queryset.count()} opt-out(s).")


class ReferenceLicenceForm(forms.ModelForm):
    class Meta:
        model = ReferenceLicence
        fields = (
            "rights_holder",
            "recording",
            "permits_reference_use",
            "pool_share_percent",
            "valid_from",
            "valid_until",
        )


@admin.register(ReferenceLicence)
class ReferenceLicenceAdmin(CatalogAdminPermissions, admin.ModelAdmin):
    form = ReferenceLicenceForm
    list_display = (
        "rights_holder",
        "scope_label",
        "permits_reference_use",
        "pool_share_percent",
        "valid_from",
        "valid_until",
        "withdrawn_at",
    )
    list_filter = ("permits_reference_use", ("withdrawn_at", admin.EmptyFieldListFilter))
    search_fields = ("rights_holder__legal_name", "recording__isrc", "recording__title")
    autocomplete_fields = ("rights_holder", "recording")
    actions = ("withdraw",)

    @admin.display(description="scope")
    def scope_label(self, obj):
        return obj.recording.isrc if obj.recording_id else "whole catalog"

    def has_change_permission(self, request, obj=None):
        return obj is None and user_has_role(request.user, CATALOG_ADMIN)

    def save_model(self, request, obj, form, change):
        saved = reference_licence_grant(
            rights_holder=form.cleaned_data["rights_holder"],
            recording=form.cleaned_data.get("recording"),
            permits_reference_use=form.cleaned_data["permits_reference_use"],
            pool_share_percent=form.cleaned_data["pool_share_percent"],
            valid_from=form.cleaned_data["valid_from"],
            valid_until=form.cleaned_data.get("valid_until"),
            actor=request.user,
        )
        obj.pk = saved.pk

    @admin.action(description="Withdraw selected reference licences")
    def withdraw(self, request, queryset):
        for licence in queryset:
            reference_licence_withdraw(licence=licence, actor=request.user)
        self.message_user(request, f"Withdrew {queryset.count()} reference licence(s).")


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("pk", "created_at", "actor", "status", "kinds", "rows", "created", "updated")
    list_filter = ("status", "created_at")
