import csv
from pathlib import Path

import pytest

from core.services import roles_ensure
from tests.catalog.factories import tone_wav_bytes


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def roles(db):
    return roles_ensure()


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


class CatalogFolder:
    """A folder with the three import files and audio, valid unless a test spoils it."""

    def __init__(self, root: Path, n_tracks: int = 3):
        self.root = root
        (root / "audio").mkdir(parents=True, exist_ok=True)
        self.holders = [
            ["Aria Artist", "artist", "0000000121032683", "00014107338", "EUR", "aria@example.com"],
            ["Lumen Label", "label", "", "", "usd", ""],
        ]
        self.recordings = []
        self.shares = []
        for i in range(n_tracks):
            isrc = f"GB-ABC-26-{i:05d}"
            audio = root / "audio" / f"track{i}.wav"
            audio.write_bytes(tone_wav_bytes(freq=300 + 50 * i, seconds=0.25))
            self.recordings.append([isrc, f"Track {i}", "", f"audio/track{i}.wav"])
            self.shares.append([isrc, "Aria Artist", "60"])
            self.shares.append([isrc, "Lumen Label", "40.0000"])
        self.recordings[0][2] = "T-034.524.680-1"

    def write(self) -> Path:
        write_csv(
            self.root / "rights_holders.csv",
            ["legal_name", "kind", "isni", "ipi", "payout_currency", "contact_email"],
            self.holders,
        )
        write_csv(
            self.root / "recordings.csv", ["isrc", "title", "iswc", "audio_path"], self.recordings
        )
        write_csv(
            self.root / "ownership_shares.csv", ["isrc", "rights_holder", "percent"], self.shares
        )
        return self.root


@pytest.fixture
def catalog_folder(tmp_path) -> CatalogFolder:
    return CatalogFolder(tmp_path / "import")
