"""Text prompts built from a track's metadata, the way a catalog would describe it."""

from __future__ import annotations

import re
import string

from demo.world.render import Excerpt


def tempo_word(qpm: int) -> str:
    if qpm < 76:
        return "slow"
    if qpm < 108:
        return "moderate"
    if qpm < 150:
        return "lively"
    return "fast"


def caption(excerpt: Excerpt) -> str:
    """E.g. "Chorale BWV 322, chorale by Johann Sebastian Bach (Bach chorales), string
    quartet, G major, 3/4, moderate tempo, 84 BPM". Deterministic: the same excerpt always gives
    the same text.

    The work's title leads, as in a catalog listing, so that two tunes of one collection on one
    instrument in one key no longer share nearly the same caption."""
    w = excerpt.work
    c = w.collection
    return (
        f"{work_title(excerpt)}, {c.genre} by {w.credited_composer} ({c.collection}), "
        f"{excerpt.ensemble.name}, {w.key}, {w.meter}, {tempo_word(excerpt.tempo_qpm)} tempo, "
        f"{excerpt.tempo_qpm} BPM"
    )


def title(excerpt: Excerpt) -> str:
    """A readable recording title: the work's title and the ensemble that plays it."""
    return f"{work_title(excerpt)} ({excerpt.ensemble.name})"


def work_title(excerpt: Excerpt) -> str:
    """A readable title of the work. Score metadata often holds only the file name
    ("bwv322.mxl", "movement3.mxl"); then the title is built from the corpus path."""
    w = excerpt.work
    raw = w.title.strip()
    if re.search(r"\.(mxl|xml|krn|abc|musicxml)$", raw, re.I) or not raw:
        parts = w.corpus_path.rsplit(".", 1)[0].split("/")[1:]  # drop the collection folder
        stem = parts[-1]
        if stem.lower().startswith("bwv"):
            raw = f"Chorale BWV {stem[3:]}"
        elif stem.lower().startswith("madrigal."):
            raw = f"Madrigal {stem.split('.', 1)[1]}"
        elif stem.lower().startswith("movement") and len(parts) > 1:
            raw = f"{w.credited_composer.split()[-1]} {parts[-2]}, movement {stem[8:]}"
        else:
            raw = " ".join(parts)
    elif raw.isupper():
        raw = string.capwords(raw.lower())
    return re.sub(r"\s+", " ", raw).strip(" .")
