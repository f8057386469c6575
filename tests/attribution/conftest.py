"""A tiny model version registered the way a real one is: catalog import of WAV files,
a stable-audio-tools checkpoint folder with its training manifest, model registration."""

import copy
import csv
import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from tests.attribution.tiny_models import tiny_dit_config

SAMPLE_RATE = 8000
SAMPLE_SIZE = 4096  # 0.512 s; patch 64 -> 64 latent frames

TINY_MODEL_CONFIG = {
    **tiny_dit_config(sample_rate=SAMPLE_RATE, sample_size=SAMPLE_SIZE, patch_size=64),
    "training": {"timestep_sampler": "uniform"},
}

# Fast engine settings for tests (the defaults are the paper's: 2048 unlearning timesteps).
TEST_ENGINE = {
    "unlearn_timesteps": 16,
    "score_timesteps": 4,
    "fisher_timesteps": 2,
    "batch_size": 8,
    "lr": 1e-4,
}


def tone(index: int, seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(index)
    wave = 0.4 * np.sin(2 * math.pi * (110 + 47 * index) * time)
    return (wave + 0.02 * rng.standard_normal(time.shape)).astype(np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def isrc_for(index: int) -> str:
    return f"GBTST26{index:05d}"


def build_tiny_checkpoint(folder: Path, tracks: list[dict], seed: int = 0) -> Path:
    from safetensors.torch import save_file
    from stable_audio_tools.models.factory import create_model_from_config

    folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(TINY_MODEL_CONFIG)
    torch.manual_seed(seed)
    module = create_model_from_config(config)
    with torch.no_grad():  # DiT zero-initialises its output projection; a trained one has none
        for param in module.parameters():
            if param.dtype.is_floating_point and not param.any():
                param.normal_(0.0, 0.05)
    state = {name: tensor.contiguous().clone() for name, tensor in module.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "model_config.json").write_text(json.dumps(config, indent=2))
    write_manifest(folder, tracks, SAMPLE_RATE, seed)
    return folder


def write_manifest(folder: Path, tracks: list[dict], sample_rate: int, seed: int = 0) -> None:
    manifest = {
        "seed": seed,
        "created_at": datetime(2026, 11, 1, tzinfo=UTC).isoformat(),
        "sample_rate": sample_rate,
        "tracks": tracks,
    }
    (folder / "training_manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture
def attribution_settings(settings, tmp_path):
    # Worker processes started by a test use the same folders (ROYALTIES_TEST_DATA_DIR).
    settings.MEDIA_ROOT = tmp_path / "data" / "media"
    settings.ARTIFACTS_DIR = tmp_path / "data" / "artifacts"
    settings.ATTRIBUTION_ENGINE = TEST_ENGINE
    settings.ATTRIBUTION_SHARD_SIZE = 2
    from attribution.services import loaded_models_clear

    loaded_models_clear()
    yield settings
    loaded_models_clear()


@pytest.fixture
def tiny_world(tmp_path):
    """(catalog folder, checkpoint folder) for 5 tracks, two of them short (padded)."""
    return write_tiny_world(tmp_path)


def write_tiny_world(tmp_path: Path, n_tracks: int = 5) -> tuple[Path, Path]:
    """Catalog files (holders, WAV recordings, 60/40 shares) and a tiny checkpoint on them."""
    catalog, tracks = write_catalog(
        tmp_path, n_tracks, lambda index: tone(index, 0.3 if index % 3 == 0 else 0.5)
    )
    checkpoint = build_tiny_checkpoint(tmp_path / "checkpoint", tracks)
    return catalog, checkpoint


def write_catalog(
    tmp_path: Path,
    n_tracks: int,
    audio: Callable[[int], np.ndarray],
    sample_rate: int = SAMPLE_RATE,
) -> tuple[Path, list[dict]]:
    """(catalog folder, manifest tracks): two holders sharing every recording 60/40, and
    ``n_tracks`` WAV recordings with samples ``audio(index)`` ((T,) or (T, C))."""
    from attribution.engine.items import file_sha256

    catalog = tmp_path / "catalog"
    (catalog / "audio").mkdir(parents=True)
    tracks = []
    holders = [("Tiny Label Ltd", "label"), ("Tiny Publishing", "publisher")]
    with (catalog / "rights_holders.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["legal_name", "kind", "isni", "ipi", "payout_currency", "contact_email"])
        for name, kind in holders:
            writer.writerow([name, kind, "", "", "EUR", ""])
    with (
        (catalog / "recordings.csv").open("w", newline="") as recordings,
        (catalog / "ownership_shares.csv").open("w", newline="") as shares,
    ):
        rec_writer, share_writer = csv.writer(recordings), csv.writer(shares)
        rec_writer.writerow(["isrc", "title", "iswc", "audio_path"])
        share_writer.writerow(["isrc", "rights_holder", "percent"])
        for index in range(n_tracks):
            path = catalog / "audio" / f"track-{index}.wav"
            path.write_bytes(wav_bytes(audio(index), sample_rate))
            rec_writer.writerow([isrc_for(index), f"Tone {index}", "", f"audio/{path.name}"])
            share_writer.writerow([isrc_for(index), holders[0][0], "60"])
            share_writer.writerow([isrc_for(index), holders[1][0], "40"])
            tracks.append(
                {
                    "track_id": f"track-{index}",
                    "isrc": isrc_for(index),
                    "audio_path": str(path),
                    "sha256": file_sha256(path),
                    "caption": f"tone {index}",
                    "seconds_start": 0,
                    "seconds_total": 1,
                }
            )
    return catalog, tracks


@pytest.fixture
def tiny_model_version(db, attribution_settings, tiny_world):
    from attribution.services import model_version_register
    from catalog.services import catalog_import_folder

    catalog, checkpoint = tiny_world
    report = catalog_import_folder(folder=catalog, actor=None)
    assert report.ok, report
    return model_version_register(name="tiny-v1", checkpoint_dir=checkpoint, actor=None)


def post_generation_over_http(
    base: str, token: str, model_name: str, index: int
) -> tuple[int, dict, float]:
    """Record generation ``index`` (its own tone) through a running server's API with a
    token: (HTTP status, answer, seconds the request took)."""
    import json
    import time
    import urllib.error
    import urllib.request
    import uuid

    boundary = uuid.uuid4().hex
    fields = {
        "model_version": model_name,
        "prompt": f"a bright tone number {index}",
        "revenue_minor": "1000",
        "currency": "EUR",
        "idempotency_key": f"http-{index}",
    }
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="g.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    body += wav_bytes(tone(1000 + index, 0.4)) + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base}/attribution/api/generations/",
        data=body,
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        method="POST",
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, {"error": exc.read().decode(errors="replace")}
    return status, answer, time.perf_counter() - started
