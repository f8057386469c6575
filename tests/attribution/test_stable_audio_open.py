"""Stable Audio Open 1.0's architecture through the platform: the published config (DiT cut
to 2 blocks, a 1.5 s window so CI stays fast) with random weights and a local T5 encoder,
saved in the published layout, registered, attributed and booked (PostgreSQL, in-process
tasks); tau = 0 when nothing is unlearned and tau linear in a small step."""

import numpy as np
import pytest
import torch
from django.contrib.auth import get_user_model

from attribution import services
from attribution.engine.artifacts import ArtifactStore
from attribution.engine.checkpoint import load_engine_model
from attribution.engine.config import EngineConfig
from attribution.engine.fisher import target_parameters
from attribution.engine.items import load_training_set, make_query
from attribution.engine.methods import unlearning as unlearning_method
from attribution.engine.methods import unlearning_scores
from attribution.engine.t5_conditioner import LocalT5Conditioner, encoder_folder
from attribution.models import AttributionRun, Generation, ModelArtifact
from tests.attribution.conftest import TEST_ENGINE, wav_bytes, write_catalog, write_manifest
from tests.attribution.stable_audio_open import (
    T5_NAME,
    build_random_model,
    stable_audio_open_config,
    stereo_tone,
    write_checkpoint,
    write_t5_encoder,
)

SAMPLE_RATE = 44100
WINDOW = 2048 * 32  # 65,536 samples (1.49 s): 32 latent frames
N_TRACKS = 3


@pytest.fixture(scope="module")
def sao_world(tmp_path_factory):
    """(catalog folder, checkpoint folder, text encoder folder), built once."""
    root = tmp_path_factory.mktemp("stable-audio-open")
    encoders = root / "text_encoders"
    write_t5_encoder(encoders / T5_NAME)
    config = stable_audio_open_config(depth=2, sample_size=WINDOW)
    module = build_random_model(config, encoders)
    catalog, tracks = write_catalog(
        root, N_TRACKS, lambda i: stereo_tone(i, 0.9 if i == 0 else 1.3), SAMPLE_RATE
    )
    checkpoint = write_checkpoint(root / "checkpoint", config, module)
    write_manifest(checkpoint, tracks, SAMPLE_RATE)
    return catalog, checkpoint, encoders


def test_every_part_of_the_published_config_is_built_offline(sao_world):
    from stable_audio_tools.models.autoencoders import OobleckDecoder, OobleckEncoder
    from stable_audio_tools.models.bottleneck import VAEBottleneck
    from stable_audio_tools.models.conditioners import NumberConditioner
    from stable_audio_tools.models.pretransforms import AutoencoderPretransform

    _, checkpoint, encoders = sao_world
    model = load_engine_model(checkpoint, text_encoder_dirs=[encoders]).module
    pretransform = model.pretransform
    assert isinstance(pretransform, AutoencoderPretransform)
    assert isinstance(pretransform.model.encoder, OobleckEncoder)
    assert isinstance(pretransform.model.decoder, OobleckDecoder)
    assert isinstance(pretransform.model.bottleneck, VAEBottleneck)
    assert pretransform.downsampling_ratio == 2048 and pretransform.encoded_channels == 64
    conditioners = model.conditioner.conditioners
    assert isinstance(conditioners["prompt"], LocalT5Conditioner)
    assert isinstance(conditioners["seconds_start"], NumberConditioner)
    assert isinstance(conditioners["seconds_total"], NumberConditioner)
    assert model.model.model.transformer.layers.__len__() == 2
    embeddings, mask = conditioners["prompt"](["a slow organ chorale"], "cpu")
    assert embeddings.shape == (1, 128, 768) and mask.shape == (1, 128)
    assert mask[0, :5].all() and not mask[0, 5:].any()  # four words and </s>


def test_a_missing_text_encoder_is_named_with_where_it_was_looked_for(sao_world, monkeypatch):
    from huggingface_hub import constants

    from attribution.engine.errors import EngineError

    _, checkpoint, _ = sao_world
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(checkpoint / "no-cache"))
    monkeypatch.delenv("ATTRIBUTION_TEXT_ENCODER_DIR", raising=False)
    with pytest.raises(EngineError, match="needs the text encoder 't5-base'") as caught:
        load_engine_model(checkpoint, text_encoder_dirs=[checkpoint / "nowhere"])
    message = str(caught.value)
    assert str(checkpoint / "nowhere" / "t5-base") in message
    assert str(checkpoint / "text_encoders" / "t5-base") in message
    assert "ATTRIBUTION_TEXT_ENCODER_DIR" in message


@pytest.mark.parametrize("repo_id", ["t5-base", "google-t5/t5-base"])
def test_the_text_encoder_is_found_in_the_hugging_face_cache(
    sao_world, tmp_path, monkeypatch, repo_id
):
    import shutil

    from huggingface_hub import constants

    encoders = sao_world[2]
    cache = tmp_path / "hub"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    shutil.copytree(encoders / T5_NAME, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("ATTRIBUTION_TEXT_ENCODER_DIR", raising=False)
    found = encoder_folder(T5_NAME, text_encoder_dirs=[tmp_path / "empty"])
    assert found == repo / "snapshots" / revision
    # A folder named in the settings comes first.
    assert encoder_folder(T5_NAME, text_encoder_dirs=[encoders]) == encoders / T5_NAME


def test_a_stable_audio_open_checkpoint_is_registered_attributed_and_booked(
    db, sao_world, attribution_settings, django_capture_on_commit_callbacks
):
    from catalog.services import catalog_import_folder
    from ledger.models import Settlement

    catalog, checkpoint, encoders = sao_world
    attribution_settings.ATTRIBUTION_TEXT_ENCODER_DIR = encoders
    report = catalog_import_folder(folder=catalog, actor=None)
    assert report.ok, report
    version = services.model_version_register(
        name="stable-audio-open-2-blocks", checkpoint_dir=checkpoint, actor=None
    )
    artifacts = services.model_version_artifacts_compute(model_version=version)
    assert {a.status for a in artifacts.values()} == {ModelArtifact.Status.READY}

    user = get_user_model().objects.create_user("sao-generator", password="x" * 12)
    with django_capture_on_commit_callbacks(execute=True):
        generation = services.generation_record(
            model_version=version,
            prompt="a bright piano chord",
            audio=wav_bytes(stereo_tone(7, 1.1), SAMPLE_RATE),
            revenue_minor=1000,
            currency="EUR",
            requested_by=user,
            idempotency_key="sao-1",
        )
    run = AttributionRun.objects.get(generation=generation)
    assert run.status == AttributionRun.Status.SUCCEEDED, run.error
    assert len(run.scores) == N_TRACKS and np.all(np.isfinite(run.scores))
    assert Generation.objects.get(pk=generation.pk).status == Generation.Status.SETTLED
    assert Settlement.objects.filter(generation=generation).exists()


@pytest.fixture(scope="module")
def sao_engine(sao_world):
    _, checkpoint, encoders = sao_world
    model = load_engine_model(checkpoint, text_encoder_dirs=[encoders])
    train_set = load_training_set(checkpoint / "training_manifest.json", model)
    audio = torch.from_numpy(stereo_tone(9, 1.2).T.copy())  # (2, T)
    query = make_query(audio, SAMPLE_RATE, "a dark cello tone", model)
    return model, train_set, query, ArtifactStore(None)


def test_nothing_unlearned_gives_zero_scores(sao_engine, monkeypatch):
    model, train_set, query, store = sao_engine
    cfg = EngineConfig(**TEST_ENGINE)
    real = unlearning_scores(model, query, train_set, cfg, store=store)
    assert np.abs(real.tau).max() > 0

    def no_update(model, query, fisher, cfg, n_train, progress=None, **kwargs):
        params = target_parameters(model, cfg.target_layers)
        return {name: p.detach().clone() for name, p in params.items()}  # theta' = theta0

    monkeypatch.setattr(unlearning_method, "unlearn", no_update)
    null = unlearning_scores(model, query, train_set, cfg, store=store)
    assert np.array_equal(null.tau, np.zeros(N_TRACKS))


def test_scores_are_linear_in_a_small_step(sao_engine):
    """With three tracks the Fisher is nearly degenerate and the step large for a given lr;
    the first-order regime (Eq. 4) holds where the update is small against the weights."""
    model, train_set, query, store = sao_engine
    base = EngineConfig(**TEST_ENGINE)
    small = unlearning_scores(model, query, train_set, base.replace(lr=1e-10), store=store)
    large = unlearning_scores(model, query, train_set, base.replace(lr=1e-9), store=store)
    relative = large.provenance["statistics"]["update_relative_norm"]
    assert 1e-6 < relative < 1e-3, relative  # small, and well above float32 resolution
    assert np.all(small.tau > 0)
    np.testing.assert_allclose(large.tau / small.tau, 10.0, rtol=0.05)


def test_the_t5_encoders_files_are_part_of_the_checkpoints_identity(sao_world, tmp_path):
    _, checkpoint, encoders = sao_world
    other = write_t5_encoder(tmp_path / T5_NAME, seed=1)  # same layout, other weights
    first = load_engine_model(checkpoint, text_encoder_dirs=[encoders])
    again = load_engine_model(checkpoint, text_encoder_dirs=[encoders])
    swapped = load_engine_model(checkpoint, text_encoder_dirs=[other.parent])
    assert first.checkpoint_sha256 == again.checkpoint_sha256
    assert swapped.checkpoint_sha256 != first.checkpoint_sha256


def test_the_prompt_cache_keeps_recent_texts_only_and_changes_no_output(sao_world, monkeypatch):
    from attribution.engine import t5_conditioner

    _, checkpoint, encoders = sao_world
    conditioner = load_engine_model(checkpoint, text_encoder_dirs=[encoders]).module.conditioner
    prompt = conditioner.conditioners["prompt"]
    monkeypatch.setattr(t5_conditioner, "CACHE_TEXTS", 2)
    first, _ = prompt(["a slow organ chorale", "a fast fiddle reel"], "cpu")
    prompt(["a bright piano tone", "a dark cello tone"], "cpu")
    assert len(prompt._cache) == 2 and "a slow organ chorale" not in prompt._cache
    again, _ = prompt(["a slow organ chorale", "a fast fiddle reel"], "cpu")  # recomputed
    assert torch.equal(first, again)
