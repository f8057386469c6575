"""The names the pages, the demo, the benchmarks and the journal give the two hashes an
auditor compares, so the same value always carries the same label:

- ``Checkpoint SHA-256``: of the model version's checkpoint (weights, config, text
  encoders), as registered;
- ``Scores SHA-256``: of an attribution run's scores as little-endian doubles in
  training-set order (``engine.scoring.Scores.tau_sha256``); a settlement records the same
  digest of the scores it read (``ledger.hashing.scores_sha256``).

Where room is short a hash is cut to its first ``SHORT_HASH_CHARS`` characters, followed
by an ellipsis; the pages keep the whole value in the element's title.
"""

CHECKPOINT_HASH_LABEL = "Checkpoint SHA-256"
SCORES_HASH_LABEL = "Scores SHA-256"
SHORT_HASH_CHARS = 16


def short_hash(value: str) -> str:
    """``value`` cut to ``SHORT_HASH_CHARS`` with an ellipsis ("—" when there is none)."""
    if not value:
        return "—"
    return value if len(value) <= SHORT_HASH_CHARS else f"{value[:SHORT_HASH_CHARS]}…"


def hashes_text(*, checkpoint: str, scores: str | None = None) -> str:
    """``Checkpoint SHA-256 0123…; Scores SHA-256 4567…`` for one-line reports."""
    text = f"{CHECKPOINT_HASH_LABEL} {short_hash(checkpoint)}"
    if scores is not None:
        text += f"; {SCORES_HASH_LABEL} {short_hash(scores)}"
    return text
