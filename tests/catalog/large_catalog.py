"""Import folders of any size, the same for every run: ``n`` recordings, each with its own
tiny WAV file (a short tone whose first samples spell its number, so no two are alike),
two ownership shares each, and the rights holders they name. Used by the large-import
tests and by ``benchmarks/catalog_scale.py``; imports no Django."""

import csv
import struct
from pathlib import Path

import numpy as np

HOLDERS = 200  # artists; every recording also has a share for the label
LABEL = "Scale Test Label"
SAMPLE_RATE = 8000
SAMPLES = 160  # 20 ms

_TONE = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(SAMPLES) / SAMPLE_RATE)).astype("<i2")


def isrc_for(n: int) -> str:
    """ISRC number ``n``: registrant codes A00, A01... hold 100,000 designations each."""
    return f"QZA{n // 100_000:02d}26{n % 100_000:05d}"


def wav_bytes(n: int) -> bytes:
    samples = _TONE.copy()
    samples[:4] = [(n >> shift) & 0x7FFF for shift in (0, 15, 30, 45)]
    data = samples.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


def holder_rows() -> list[list[str]]:
    rows = [[f"Scale Artist {i:03d}", "artist", "", "", "USD", ""] for i in range(HOLDERS)]
    return [*rows, [LABEL, "label", "", "", "EUR", ""]]


def recording_row(n: int) -> list[str]:
    return [isrc_for(n), f"Scale track {n}", "", f"audio/{n // 1000:03d}/{n}.wav"]


def share_rows(n: int) -> list[list[str]]:
    return [
        [isrc_for(n), f"Scale Artist {n % HOLDERS:03d}", "60"],
        [isrc_for(n), LABEL, "40.0000"],
    ]


HEADERS = {
    "rights_holders": ["legal_name", "kind", "isni", "ipi", "payout_currency", "contact_email"],
    "recordings": ["isrc", "title", "iswc", "audio_path"],
    "ownership_shares": ["isrc", "rights_holder", "percent"],
}


def audio_write(root: Path, n: int) -> None:
    """The audio files of recordings 0..n-1 under ``root/audio``."""
    for i in range(n):
        path = root / recording_row(i)[3]
        if i % 1000 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_bytes(i))


def rows_of(kind: str, n: int):
    if kind == "rights_holders":
        yield from holder_rows()
    elif kind == "recordings":
        for i in range(n):
            yield recording_row(i)
    else:
        for i in range(n):
            yield from share_rows(i)


def csv_write(path: Path, kind: str, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS[kind])
        writer.writerows(rows)
    return path


def xlsx_write(path: Path, kind: str, rows) -> Path:
    """Written in openpyxl's write-only mode; percents as numbers, as Excel stores them."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(kind)
    sheet.append(HEADERS[kind])
    for row in rows:
        if kind == "ownership_shares":
            row = [row[0], row[1], float(row[2])]
        sheet.append(row)
    workbook.save(path)
    return path


def catalog_folder_write(root: Path, n: int, *, fmt: str = "csv", audio: bool = True) -> Path:
    """A folder to import with ``catalog_import_folder``: three files in ``fmt`` (csv or
    xlsx) and, unless ``audio`` is false (already written), the audio files."""
    root.mkdir(parents=True, exist_ok=True)
    if audio:
        audio_write(root, n)
    write = csv_write if fmt == "csv" else xlsx_write
    for kind in HEADERS:
        write(root / f"{kind}.{fmt}", kind, rows_of(kind, n))
    return root
