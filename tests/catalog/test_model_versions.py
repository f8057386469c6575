"""Registering model versions: manifest -> ordered training set, opt-outs, artifacts."""

import hashlib
import json
from datetime import date
from decimal import Decimal

import pytest

from catalog.models import ModelArtifact, ModelVersion, TrainingSetEntry
from catalog.selectors import (
    opted_out_recordings_in_model_version,
    recordings_opted_out,
    training_set_for_model_version,
)
from catalog.services import (
    model_artifact_update,
    model_version_register,
    opt_out_create,
    opt_out_withdraw,
)
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.catalog.factories import RecordingFactory, RightsHolderFactory

pytestmark = pytest.mark.django_db


def write_checkpoint(folder, recordings, *, created_at="2026-06-01T12:00:00Z", weights=b"w"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_config.json").write_text(json.dumps({"model_type": "diffusion_cond"}))
    (folder / "model.safetensors").write_bytes(weights)
    tracks = [
        {
            "track_id": f"t{i}",
            "isrc": r.isrc,
            "sha256": r.audio_sha256,
            "caption": f"caption {i}",
            "seconds_total": 0.5,
        }
        for i, r in enumerate(recordings)
    ]
    manifest = {"seed": 7, "created_at": created_at, "tracks": tracks}
    (folder / "training_manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def recordings():
    return [RecordingFactory() for _ in range(4)]


def test_register_stores_ordered_training_set_and_hashes(tmp_path, recordings):
    order = [recordings[2], recordings[0], recordings[3], recordings[1]]
    folder = write_checkpoint(tmp_path / "ckpt", order, weights=b"weights-bytes")
    model = model_version_register(name="sao-small-v1", checkpoint_dir=folder, actor=None)
    assert model.checkpoint_sha256 == hashlib.sha256(b"weights-bytes").hexdigest()
    assert (
        model.manifest_sha256
        == hashlib.sha256((folder / "training_manifest.json").read_bytes()).hexdigest()
    )
    assert model.checkpoint_path == str(folder.resolve() / "model.safetensors")
    assert model.config == {"model_type": "diffusion_cond"}
    assert model.trained_at.isoformat() == "2026-06-01T12:00:00+00:00"
    assert model.manifest_seed == 7
    assert training_set_for_model_version(model) == order
    entry = TrainingSetEntry.objects.get(model_version=model, position=1)
    assert entry.track_id == "t1" and entry.manifest_entry["caption"] == "caption 1"
    assert set(model.artifacts.values_list("kind", "status")) == {
        ("fisher", "missing"),
        ("base_losses", "missing"),
    }
    assert AuditEvent.objects.filter(action="model_version.register").count() == 1


def test_register_again_is_idempotent_but_a_clash_is_refused(tmp_path, recordings):
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    first = model_version_register(name="v1", checkpoint_dir=folder, actor=None)
    assert model_version_register(name="v1", checkpoint_dir=folder, actor=None) == first
    with pytest.raises(ApplicationError, match="already registered as 'v1'"):
        model_version_register(name="v2", checkpoint_dir=folder, actor=None)
    other = write_checkpoint(tmp_path / "other", recordings, weights=b"other")
    with pytest.raises(ApplicationError, match="already exists"):
        model_version_register(name="v1", checkpoint_dir=other, actor=None)


def test_unknown_recordings_are_listed(tmp_path, recordings):
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    manifest = json.loads((folder / "training_manifest.json").read_text())
    manifest["tracks"].append({"isrc": "QZZZZ2699998", "sha256": "0" * 64})
    manifest["tracks"].append({"isrc": "QZZZZ2699999", "sha256": "0" * 64})
    (folder / "training_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ApplicationError) as excinfo:
        model_version_register(name="v1", checkpoint_dir=folder, actor=None)
    assert excinfo.value.extra == {"unknown_isrcs": ["QZZZZ2699998", "QZZZZ2699999"]}
    assert "2 unknown recording(s)" in excinfo.value.message
    assert not ModelVersion.objects.exists()


def test_audio_hash_mismatch_is_refused(tmp_path, recordings):
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    manifest = json.loads((folder / "training_manifest.json").read_text())
    manifest["tracks"][1]["sha256"] = "f" * 64
    (folder / "training_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ApplicationError) as excinfo:
        model_version_register(name="v1", checkpoint_dir=folder, actor=None)
    assert excinfo.value.extra == {"hash_mismatch_isrcs": [recordings[1].isrc]}


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda f: (f / "model.safetensors").unlink(), "lacks model.safetensors"),
        (lambda f: (f / "training_manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda f: (f / "training_manifest.json").write_text('{"tracks": []}'), "no 'tracks'"),
        (
            lambda f: (f / "training_manifest.json").write_text(
                '{"created_at": "yesterday", "tracks": [{"isrc": "x", "sha256": "y"}]}'
            ),
            "not an ISO datetime",
        ),
    ],
)
def test_broken_checkpoint_folders_give_clear_errors(tmp_path, recordings, breakage, message):
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    breakage(folder)
    with pytest.raises(ApplicationError, match=message):
        model_version_register(name="v1", checkpoint_dir=folder, actor=None)


def test_missing_folder(tmp_path):
    with pytest.raises(ApplicationError, match="is not a folder"):
        model_version_register(name="v1", checkpoint_dir=tmp_path / "nope", actor=None)


class TestOptOuts:
    def test_recording_opt_out_refuses_a_later_model(self, tmp_path, recordings):
        holder = recordings[1].ownership_shares.get().rights_holder
        opt_out_create(
            rights_holder=holder,
            recording=recordings[1],
            effective_from=date(2026, 5, 1),
            actor=None,
        )
        folder = write_checkpoint(tmp_path / "ckpt", recordings)
        with pytest.raises(ApplicationError, match="opted out") as excinfo:
            model_version_register(name="v1", checkpoint_dir=folder, actor=None)
        assert excinfo.value.extra == {"opted_out_isrcs": [recordings[1].isrc]}
        assert not ModelVersion.objects.exists()

    def test_a_model_trained_before_the_opt_out_date_is_accepted(self, tmp_path, recordings):
        holder = recordings[1].ownership_shares.get().rights_holder
        opt_out_create(
            rights_holder=holder,
            recording=recordings[1],
            effective_from=date(2026, 7, 1),
            actor=None,
        )
        folder = write_checkpoint(tmp_path / "ckpt", recordings, created_at="2026-06-30T23:59:59Z")
        model = model_version_register(name="v1", checkpoint_dir=folder, actor=None)
        # ...and keeps attributing to the recording until replaced
        assert recordings[1] in training_set_for_model_version(model)
        assert opted_out_recordings_in_model_version(model) == [recordings[1]]

    def test_whole_catalog_opt_out_covers_every_recording_with_a_share(self, tmp_path):
        holder = RightsHolderFactory()
        other = RightsHolderFactory()
        shared = RecordingFactory(shares=[(holder, Decimal("10")), (other, Decimal("90"))])
        own = RecordingFactory(shares=[(holder, Decimal("100"))])
        unrelated = RecordingFactory()
        opt_out_create(rights_holder=holder, effective_from=date(2026, 1, 1), actor=None)
        assert set(recordings_opted_out()) == {shared, own}
        folder = write_checkpoint(tmp_path / "ckpt", [unrelated, shared, own])
        with pytest.raises(ApplicationError) as excinfo:
            model_version_register(name="v1", checkpoint_dir=folder, actor=None)
        assert excinfo.value.extra == {"opted_out_isrcs": sorted([shared.isrc, own.isrc])}
        clean = write_checkpoint(tmp_path / "clean", [unrelated], weights=b"clean")
        assert model_version_register(name="v2", checkpoint_dir=clean, actor=None)

    def test_admin_override_is_recorded_with_its_reason(self, tmp_path, recordings):
        holder = recordings[0].ownership_shares.get().rights_holder
        opt_out = opt_out_create(rights_holder=holder, effective_from=date(2026, 1, 1), actor=None)
        folder = write_checkpoint(tmp_path / "ckpt", recordings)
        model = model_version_register(
            name="v1",
            checkpoint_dir=folder,
            actor=None,
            override_reason="legal hold: contract dispute pending",
        )
        assert model.opt_out_override_reason == "legal hold: contract dispute pending"
        event = AuditEvent.objects.get(action="model_version.opt_out_override")
        assert event.reason == "legal hold: contract dispute pending"
        assert event.after == {"opted_out": [{"isrc": recordings[0].isrc, "opt_out": opt_out.pk}]}

    def test_withdrawn_opt_out_no_longer_blocks(self, tmp_path, recordings):
        holder = recordings[0].ownership_shares.get().rights_holder
        opt_out = opt_out_create(rights_holder=holder, effective_from=date(2026, 1, 1), actor=None)
        opt_out_withdraw(opt_out=opt_out, actor=None)
        folder = write_checkpoint(tmp_path / "ckpt", recordings)
        assert model_version_register(name="v1", checkpoint_dir=folder, actor=None)
        assert AuditEvent.objects.filter(action="opt_out.withdraw").count() == 1

    def test_cannot_opt_out_a_recording_without_a_share(self, recordings):
        with pytest.raises(ApplicationError, match="holds no share"):
            opt_out_create(
                rights_holder=RightsHolderFactory(),
                recording=recordings[0],
                effective_from=date(2026, 1, 1),
                actor=None,
            )


class TestArtifacts:
    @pytest.fixture
    def model(self, tmp_path, recordings):
        folder = write_checkpoint(tmp_path / "ckpt", recordings)
        return model_version_register(name="v1", checkpoint_dir=folder, actor=None)

    def test_lifecycle(self, model, tmp_path):
        artifact = model_artifact_update(model_version=model, kind="fisher", status="computing")
        artifact = model_artifact_update(
            model_version=model, kind="fisher", status="computing", progress_percent=40
        )
        assert (artifact.status, artifact.progress_percent) == ("computing", 40)
        path = tmp_path / "fisher.pt"
        path.write_bytes(b"fisher")
        artifact = model_artifact_update(
            model_version=model, kind="fisher", status="ready", path=str(path)
        )
        assert artifact.sha256 == hashlib.sha256(b"fisher").hexdigest()
        assert artifact.progress_percent == 100
        actions = list(
            AuditEvent.objects.filter(action__startswith="model_artifact.").values_list(
                "action", flat=True
            )
        )
        assert sorted(actions) == ["model_artifact.computing", "model_artifact.ready"]

    def test_refuses_bad_transitions_and_missing_files(self, model, tmp_path):
        with pytest.raises(ApplicationError, match="cannot go from missing to failed"):
            model_artifact_update(model_version=model, kind="base_losses", status="failed")
        with pytest.raises(ValueError):
            model_artifact_update(model_version=model, kind="base_losses", status="done")
        model_artifact_update(model_version=model, kind="base_losses", status="computing")
        with pytest.raises(ApplicationError, match="between 0 and 100"):
            model_artifact_update(
                model_version=model, kind="base_losses", status="computing", progress_percent=101
            )
        with pytest.raises(ApplicationError, match="does not exist"):
            model_artifact_update(
                model_version=model,
                kind="base_losses",
                status="ready",
                path=str(tmp_path / "nope"),
            )
        failed = model_artifact_update(
            model_version=model, kind="base_losses", status="failed", error="CUDA OOM"
        )
        assert failed.error == "CUDA OOM"
        assert ModelArtifact.objects.get(pk=failed.pk).status == "failed"
        path = tmp_path / "losses.npy"
        path.write_bytes(b"losses")
        ready = model_artifact_update(
            model_version=model, kind="base_losses", status="ready", path=str(path)
        )
        assert (ready.status, ready.error) == ("ready", "")
        with pytest.raises(ApplicationError, match="cannot go from ready to failed"):
            model_artifact_update(model_version=model, kind="base_losses", status="failed")
