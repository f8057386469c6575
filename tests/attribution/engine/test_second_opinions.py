"""The second opinions (Sec. 3.3): audio similarity, activation similarity, representer points
and gradient similarity, behind the same staged interface as the unlearning methods."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attribution.engine.activations import window_activations
from attribution.engine.artifacts import ArtifactStore
from attribution.engine.audio_features import (
    _pitch_classes,
    fft_size,
    window_embeddings,
    window_geometry,
)
from attribution.engine.errors import ArtifactNotComputedError
from attribution.engine.features import item_gradient
from attribution.engine.fisher import target_parameters
from attribution.engine.items import QueryItem, encode_item, query_from_training_item
from attribution.engine.methods import METHODS, method_named
from attribution.engine.pipeline import QueryState, attribute, combine, score_slice, slice_bounds
from attribution.engine.projection import flatten
from attribution.engine.unlearn import query_gradient

SECOND_OPINIONS = [
    "audio_similarity",
    "activation_similarity",
    "representer_points",
    "gradient_similarity",
]
SIMILARITIES = ["audio_similarity", "activation_similarity"]
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cfg(tiny_cfg):
    return tiny_cfg.replace(similarity_timesteps=4, first_order_timesteps=8, projection_dim=64)


@pytest.mark.parametrize("name", SECOND_OPINIONS)
def test_each_second_opinion_is_a_method_with_one_float64_score_per_track(
    name, tiny_model, tiny_train_set, cfg
):
    method = method_named(name)
    assert METHODS[name] is method and method.name == name
    scores = attribute(method, tiny_model, _query(tiny_train_set, 2), tiny_train_set, cfg)
    assert scores.tau.shape == (len(tiny_train_set),) and scores.tau.dtype == np.float64
    assert np.isfinite(scores.tau).all() and np.ptp(scores.tau) > 0
    assert scores.provenance["method"] == name
    assert scores.item_ids == tiny_train_set.item_ids


@pytest.mark.parametrize("name", SECOND_OPINIONS)
def test_scores_are_the_same_bytes_twice_and_sliced_across_workers(
    name, tiny_model, tiny_train_set, cfg, tmp_path
):
    method = method_named(name)
    query = _query(tiny_train_set, 1)
    whole = attribute(method, tiny_model, query, tiny_train_set, cfg)
    again = attribute(method, tiny_model, query, tiny_train_set, cfg)
    assert whole.tau.tobytes() == again.tau.tobytes()
    # as the tasks run it: the query state saved by one worker, each slice scored by a worker
    # with its own prepared checkpoint (artifacts read from the shared store), in any order
    store_root = tmp_path / "store"
    first = method.prepare(tiny_model, tiny_train_set, cfg, ArtifactStore(store_root))
    state = method.query_state(first, query)
    digest = state.save(tmp_path / "state.pt")
    pieces = []
    for start, stop in reversed(slice_bounds(len(tiny_train_set), 4)):
        worker = method.prepare(
            tiny_model, tiny_train_set, cfg, ArtifactStore(store_root), compute=False
        )
        loaded = QueryState.load(tmp_path / "state.pt", digest)
        pieces.append(score_slice(method, worker, loaded, start, stop))
    sliced = combine(method, first, state, pieces)
    assert sliced.tau.tobytes() == whole.tau.tobytes()
    assert sliced.provenance["tau_sha256"] == whole.provenance["tau_sha256"]


@pytest.mark.parametrize("name", SIMILARITIES)
def test_a_query_identical_to_a_training_track_scores_it_highest(
    name, tiny_model, tiny_train_set, cfg
):
    method = method_named(name)
    for position in (0, 3, 5):  # a padded (short) track among them
        scores = attribute(
            method, tiny_model, _query(tiny_train_set, position), tiny_train_set, cfg
        )
        assert scores.rank_of(position) == 1, (position, scores.tau)
        assert scores.tau[position] == pytest.approx(1.0, abs=1e-6)
        others = np.delete(scores.tau, position)
        assert others.max() < 1.0 - 1e-3


# audio similarity -------------------------------------------------------------------------


def test_audio_windows_are_the_papers_shares_of_the_model_window():
    # Sec. 3.3: 10 s windows every 1 s on a DiT window of about 120 s at 44.1 kHz
    assert window_geometry(120 * 44100, 44100, 10 / 120, 1 / 120) == (441000, 44100)
    assert fft_size(44100) == 2048
    # a window never shorter than one FFT frame
    assert window_geometry(512, 1000, 10 / 120, 1 / 120) == (fft_size(1000), 4)


def test_audio_windows_cover_the_track_to_its_end_and_a_short_track_is_one_window():
    rate, window, hop = 1000, 128, 32
    audio = torch.randn(1, 1000, generator=torch.Generator().manual_seed(0))
    embeddings = window_embeddings(audio, rate, window, hop)
    # starts 0, 32, ..., 864, then 872 so that the last window ends at sample 1000
    assert embeddings.shape == (len(range(0, 1000 - window + 1, hop)) + 1, 62)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(len(embeddings)).double())
    assert window_embeddings(audio[:, :100], rate, window, hop).shape == (1, 62)


def test_chroma_puts_a_tone_in_its_pitch_class():
    rate = 8000
    n_fft = fft_size(rate)
    classes = _pitch_classes(n_fft, rate)  # (F, 12)
    bin_of_440 = round(440 * n_fft / rate)
    assert classes[bin_of_440].argmax() == 9  # A (C = 0)
    assert classes[: math.floor(27.5 * n_fft / rate)].sum() == 0  # below the piano: none


def test_audio_similarity_hears_pitch_more_than_noise(tiny_model, cfg):
    """A tone with added noise stays closer to the tone than the same tone a fifth higher."""
    rate, length = tiny_model.sample_rate, tiny_model.sample_size
    time = torch.arange(length) / rate
    generator = torch.Generator().manual_seed(1)

    def tone(freq, noise=0.0):
        audio = 0.5 * torch.sin(2 * math.pi * freq * time)
        return (audio + noise * torch.randn(length, generator=generator))[None].float()

    window, hop = window_geometry(length, rate, cfg.audio_window_share, cfg.audio_hop_share)
    reference = window_embeddings(tone(110.0), rate, window, hop)
    noisy = window_embeddings(tone(110.0, noise=0.05), rate, window, hop)
    fifth = window_embeddings(tone(165.0), rate, window, hop)
    assert (reference @ noisy.T).max() > (reference @ fifth.T).max()


# activation similarity and representer points --------------------------------------------


def test_every_item_is_seen_at_the_same_draws(tiny_model, tiny_train_set, cfg):
    encoded = [encode_item(tiny_model, item, cfg) for item in tiny_train_set.items[:2]]
    first, second = (window_activations(tiny_model, item, cfg) for item in encoded)
    # K = 4 draws, T = 32 latent tokens of D = 64; the residual over C = 16 latent channels
    assert first.features.shape == (4, 32, 64) and len(first.layers) == 2
    assert first.layers[0].shape == (4, 32, 64) and first.residual.shape == (4, 16, 32)
    # the same (t, noise) for both items, whatever their ids: two identical items under
    # different ids give identical activations
    renamed = encode_item(tiny_model, _query(tiny_train_set, 0), cfg)
    again = window_activations(tiny_model, renamed, cfg)
    assert torch.equal(again.layers[1], first.layers[1])
    assert not torch.equal(second.layers[1], first.layers[1])


def test_activations_do_not_depend_on_the_batch_size(tiny_model, tiny_train_set, cfg):
    item = encode_item(tiny_model, tiny_train_set.items[4], cfg)
    batched = window_activations(tiny_model, item, cfg.replace(batch_size=4))
    single = window_activations(tiny_model, item, cfg.replace(batch_size=1))
    torch.testing.assert_close(batched.features, single.features, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched.residual, single.residual, rtol=1e-5, atol=1e-6)


def test_representer_scores_follow_the_papers_formula(tiny_model, tiny_train_set, cfg):
    """tau_i = alpha_i f(z_i)^T f(z_hat), alpha_i = (Phi(z_i) - y_i) / (-lambda n), averaged
    over the query's outputs and the item's draws: checked token by token against the last
    layer's input captured here, independently of the method's hooks."""
    method = method_named("representer_points")
    query = _query(tiny_train_set, 3)
    scores = attribute(method, tiny_model, query, tiny_train_set, cfg)
    n, lam = len(tiny_train_set), cfg.representer_lambda
    query_features = _last_layer_input(tiny_model, encode_item(tiny_model, query, cfg), cfg)
    query_mean = query_features.double().mean(dim=(0, 1))  # (D,)
    for position, item in enumerate(tiny_train_set.items):
        encoded = encode_item(tiny_model, item, cfg)
        features = _last_layer_input(tiny_model, encoded, cfg).double()  # (K, T, D)
        residual = window_activations(tiny_model, encoded, cfg).residual.double()  # (K, C, L)
        draws, tokens = features.shape[:2]
        expected = 0.0
        for k in range(draws):
            for j in range(tokens):
                alpha = residual[k, :, j] / (-lam * n)  # the token's C outputs (patch 1)
                expected += float(alpha.mean()) * float(features[k, j] @ query_mean)
        expected /= draws
        assert scores.tau[position] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    halved = attribute(
        method, tiny_model, query, tiny_train_set, cfg.replace(representer_lambda=2 * lam)
    )
    np.testing.assert_allclose(halved.tau, scores.tau / 2, rtol=1e-12)


def _last_layer_input(model, item, cfg):
    """(K, T, D): the output projection's input on the item's tokens at the shared draws."""
    from attribution.engine.activations import shared_draws
    from attribution.engine.loss import model_output

    transformer = model.module.model.model.transformer
    seen = []
    handle = transformer.project_out.register_forward_pre_hook(
        lambda _m, inputs: seen.append(inputs[0].detach())
    )
    try:
        with torch.no_grad():
            t, noise = shared_draws(model, item, cfg, range(cfg.similarity_timesteps))
            model_output(model, item, t, noise)
    finally:
        handle.remove()
    tokens = item.latents.shape[-1]  # patch size 1 in the tiny DiT
    return seen[0][:, -tokens:, :]


# gradient similarity ----------------------------------------------------------------------


def test_gradient_similarity_is_the_unwhitened_gradient_inner_product(
    tiny_model, tiny_train_set, cfg
):
    method = method_named("gradient_similarity")
    unprojected = cfg.replace(projection="none")
    query = _query(tiny_train_set, 4)
    scores = attribute(method, tiny_model, query, tiny_train_set, unprojected)
    params = target_parameters(tiny_model, cfg.target_layers)
    names = sorted(params)
    encoded_query = encode_item(tiny_model, query, cfg)
    ghat = flatten(
        query_gradient(
            tiny_model, encoded_query, cfg.replace(unlearn_timesteps=cfg.first_order_timesteps),
            params,
        ),
        names,
    ).double()  # fmt: skip  # (p,)
    for position, item in enumerate(tiny_train_set.items):
        gbar = item_gradient(tiny_model, encode_item(tiny_model, item, cfg), cfg, params)
        expected = float(flatten(gbar, names).double() @ ghat)
        assert scores.tau[position] == pytest.approx(expected, rel=1e-5)
    # the Fisher plays no part: its damping does not change the scores or the artifact's key
    damped = attribute(method, tiny_model, query, tiny_train_set, unprojected.replace(damping=0.5))
    assert damped.tau.tobytes() == scores.tau.tobytes()
    # a projected run keeps the ranking closely
    projected = attribute(
        method, tiny_model, query, tiny_train_set, cfg.replace(projection_dim=4096)
    )
    assert np.corrcoef(projected.tau, scores.tau)[0, 1] > 0.95


def test_stored_gradients_are_not_the_whitened_features_and_are_never_computed_by_a_scorer(
    tiny_model, tiny_train_set, cfg, tmp_path
):
    store = ArtifactStore(tmp_path)
    encoded = store.encodings(tiny_model, tiny_train_set, cfg)
    with pytest.raises(ArtifactNotComputedError, match="unwhitened gradient features"):
        method_named("gradient_similarity").prepare(
            tiny_model, tiny_train_set, cfg, ArtifactStore(tmp_path), compute=False
        )
    gradients = np.array(store.features(tiny_model, encoded, tiny_train_set, cfg, whitened=False))
    features = np.array(store.features(tiny_model, encoded, tiny_train_set, cfg))
    assert gradients.shape == features.shape == (len(tiny_train_set), 64)
    assert not np.allclose(gradients, features)
    path = store.artifact_file(tiny_model, "gradients", tiny_train_set, cfg)
    assert path is not None and path.name == "gradients.npy"
    assert path != store.artifact_file(tiny_model, "features", tiny_train_set, cfg)
    key = store.artifact_key(tiny_model, "gradients", tiny_train_set, cfg)
    assert key == store.artifact_key(
        tiny_model, "gradients", tiny_train_set, cfg.replace(damping=0.5, fisher_timesteps=7)
    )
    reloaded = ArtifactStore(tmp_path).features(
        tiny_model, encoded, tiny_train_set, cfg, compute=False, whitened=False
    )
    assert np.asarray(reloaded).tobytes() == gradients.tobytes()


# two processes ----------------------------------------------------------------------------

CHILD = """
import json, sys
import torch
torch.set_num_threads(1)
from tests.attribution.engine.conftest import build_tiny, make_items
from attribution.engine.artifacts import ArtifactStore
from attribution.engine.config import EngineConfig
from attribution.engine.items import TrainingSet, query_from_training_item
from attribution.engine.methods import METHODS
from attribution.engine.pipeline import attribute

model = build_tiny(seed=3)
train_set = TrainingSet.from_items(make_items(5, seed=4))
cfg = EngineConfig(score_timesteps=3, batch_size=4, similarity_timesteps=3,
                   first_order_timesteps=4, projection_dim=32)
query = query_from_training_item(train_set.items[1])
out = {}
for name in sys.argv[2:]:
    scores = attribute(METHODS[name], model, query, train_set, cfg,
                       store=ArtifactStore(sys.argv[1]))
    out[name] = [float(x).hex() for x in scores.tau]
print(json.dumps(out))
"""


def test_two_processes_give_bit_identical_second_opinions(tmp_path):
    def run(folder):
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "random"}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), *SECOND_OPINIONS],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert set(first) == set(SECOND_OPINIONS)
    assert first == second


def _query(train_set, position) -> QueryItem:
    return query_from_training_item(train_set.items[position])
