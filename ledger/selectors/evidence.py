"""A generation's attribution evidence: everything a third party needs to recompute how its
revenue was split (``ledger.evidence`` does the recomputation from the file alone).

The evidence is of the generation's live settlement (the one that pays; else the latest
settlement, reversed, so that what was once booked can still be checked). Finance and
catalog admins get the full file; a rights holder's user gets the same scores, policy and
booked track weights and amounts, but only the holders' own holder lines, ownership
shares of their own paid tracks (co-owners as ``null``: their percents are needed for the
exact allocation, not their identity) and the ISRC and title of their own tracks.
"""

from attribution.models import Generation
from attribution.selectors import AnyUser, holder_positions, user_sees_all_generations
from catalog.selectors import holders_for_user
from ledger.evidence import EVIDENCE_FORMAT, FULL, HOLDER
from ledger.hashing import SETTLEMENT_FIELDS, timestamp_canonical
from ledger.models import Settlement
from ledger.selectors.generations import live_settlements

EVIDENCE_NOTES = {
    "scores_sha256": (
        "sha256 of the scores as the ledger read them: canonical JSON (sorted keys, no "
        "spaces) of the list of floats; recomputable from training_set[].score"
    ),
    "run_scores_sha256": (
        "the attribution engine's hash of the same scores as stored in its artifact store "
        "(float32 tensor bytes); not recomputable from this file"
    ),
    "checkpoint_sha256": "sha256 of the model checkpoint the scores were computed against",
    "manifest_sha256": "sha256 of the training-set manifest (positions -> audio files)",
    "amounts": "accrual units: 1,000,000 per minor unit of the currency (cent for USD)",
    "recompute": "python -m ledger.evidence THIS_FILE.json (see docs/ledger.md)",
}


def evidence_settlement(*, generation: Generation) -> Settlement | None:
    live = live_settlements().filter(generation=generation).first()
    if live is not None:
        return live
    return Settlement.objects.filter(generation=generation).order_by("-journal_entry").first()


def generation_evidence(*, generation: Generation, user: AnyUser) -> dict | None:
    """The evidence file of ``generation`` as ``user`` may read it (JSON-ready), or None
    when the generation was never settled. The caller has checked that ``user`` may see
    the generation."""
    settlement = evidence_settlement(generation=generation)
    if settlement is None:
        return None
    settlement = Settlement.objects.select_related(
        "attribution_run", "journal_entry", "generation__model_version"
    ).get(pk=settlement.pk)
    run = settlement.attribution_run
    full = user_sees_all_generations(user)
    own_holders = set() if full else set(holders_for_user(user).values_list("pk", flat=True))
    entries = list(
        generation.model_version.training_set_entries.select_related("recording").order_by(
            "position"
        )
    )
    own_positions = set() if full else holder_positions(generation.model_version_id, own_holders)
    training_set = []
    for entry, score in zip(entries, run.scores, strict=True):
        track = {"position": entry.position, "score": score}
        if full or entry.position in own_positions:
            track |= {
                "recording": entry.recording_id,
                "isrc": entry.recording.isrc,
                "title": entry.recording.title,
            }
        training_set.append(track)
    track_lines = list(settlement.tracks.order_by("position"))
    holder_lines = list(settlement.holders.order_by("rights_holder_id"))
    ownership = settlement.ownership_snapshot
    if not full:
        ownership = {
            position: [[h if h in own_holders else None, percent] for h, percent in shares]
            for position, shares in ownership.items()
            if any(h in own_holders for h, _ in shares)
        }
        holder_lines = [line for line in holder_lines if line.rights_holder_id in own_holders]
    references = settlement.reference_lines
    if not full:
        references = [
            {
                **reference,
                "ownership": [
                    [h if h in own_holders else None, percent]
                    for h, percent in reference["ownership"]
                ],
                "holders": [[h, part] for h, part in reference["holders"] if h in own_holders],
            }
            for reference in references
        ]
    settlement_fields = {key: getattr(settlement, attr) for key, attr in SETTLEMENT_FIELDS}
    if not full:
        settlement_fields.pop("ownership_snapshot")
    booked = {
        "tracks": [[t.position, t.weight, t.amount] for t in track_lines],
        "holders": [
            [h.rights_holder_id, h.amount, h.tracks, h.reference_parts] for h in holder_lines
        ],
    }
    if full:
        booked["track_recordings"] = [
            [t.position, t.recording_id, t.weight, t.amount] for t in track_lines
        ]
    reversed_by = settlement.journal_entry.reversed_by.first()
    return {
        "format": EVIDENCE_FORMAT,
        "scope": FULL if full else HOLDER,
        "notes": EVIDENCE_NOTES,
        "generation": {
            "id": generation.pk,
            "created_at": timestamp_canonical(generation.created_at),
            "currency": generation.currency,
            "revenue_minor": generation.revenue_minor,
            "model_version": generation.model_version.name,
        },
        "attribution_run": {
            "id": run.pk,
            "method": run.method,
            "engine_config": run.engine_config,
            "seed": run.seed,
            "library_versions": run.library_versions,
            "checkpoint_sha256": run.checkpoint_sha256,
            "manifest_sha256": run.manifest_sha256,
            "run_scores_sha256": run.scores_sha256,
        },
        "settlement": settlement_fields
        | {
            "id": settlement.pk,
            "journal_entry": settlement.journal_entry_id,
            "journal_entry_hash": settlement.journal_entry.hash,
            "reversed_by_entry": reversed_by.seq if reversed_by is not None else None,
            "provenance_sha256": settlement.provenance_sha256,
        },
        "training_set": training_set,
        "ownership": ownership,
        "references": references,
        "booked": booked,
    }
