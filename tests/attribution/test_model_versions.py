"""Model versions: registering a checkpoint (manifest -> ordered training set, opt-outs),
their artifacts, and the pages, API, command and admin that use them."""

import hashlib
import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from attribution.models import ModelArtifact, ModelVersion, TrainingSetEntry
from attribution.selectors.model_versions import (
    opted_out_recordings_in_model_version,
    training_set_for_model_version,
)
from attribution.services import model_artifact_update, model_version_register
from catalog.selectors import recordings_opted_out
from catalog.services import opt_out_create, opt_out_withdraw
from core.exceptions import ApplicationError
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from tests.attribution.factories import ModelVersionFactory
from tests.catalog.factories import RecordingFactory, RightsHolderFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/attribution/api"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


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
        stale = model_artifact_update(
            model_version=model, kind="base_losses", status="missing", error="other config"
        )
        assert (stale.status, stale.error, stale.progress_percent) == ("missing", "other config", 0)


# --- the command ------------------------------------------------------------------------------


def test_register_model_version_command(tmp_path, capsys):
    recordings = [RecordingFactory(), RecordingFactory()]
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    call_command("register_model_version", "demo-v1", str(folder))
    assert "2 training tracks" in capsys.readouterr().out
    assert ModelVersion.objects.get().name == "demo-v1"
    with pytest.raises(CommandError, match="already registered"):
        call_command("register_model_version", "demo-v2", str(folder))


# --- the pages --------------------------------------------------------------------------------


@pytest.fixture
def admin(client):
    account = UserFactory(role=CATALOG_ADMIN)
    client.force_login(account)
    return account


def test_register_a_model_version_through_the_page(client, admin, tmp_path):
    recordings = [RecordingFactory() for _ in range(3)]
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    bad = client.post(
        "/attribution/model-versions/new/",
        {"name": "v1", "checkpoint_dir": str(tmp_path / "none")},
    )
    assert bad.status_code == 200 and "is not a folder" in bad.content.decode()
    response = client.post(
        "/attribution/model-versions/new/", {"name": "sao-v1", "checkpoint_dir": str(folder)}
    )
    version = ModelVersion.objects.get(name="sao-v1")
    assert response.status_code == 302 and response["Location"] == (
        f"/attribution/model-versions/{version.pk}/"
    )
    assert version.training_set_entries.count() == 3
    assert AuditEvent.objects.filter(action="model_version.register", actor=admin).exists()
    listing = client.get("/attribution/model-versions/").content.decode()
    assert "sao-v1" in listing and '<table class="sortable"' in listing
    assert f'href="/attribution/model-versions/{version.pk}/"' in listing


def test_training_set_is_sorted_and_searched_across_pages(client, admin, tmp_path, monkeypatch):
    monkeypatch.setattr("attribution.views.model_versions.PAGE_SIZE", 2)
    recordings = [RecordingFactory(title=title) for title in ("Bolero", "Aria", "Canon")]
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    version = model_version_register(name="v-sort", checkpoint_dir=folder, actor=None)
    url = f"/attribution/model-versions/{version.pk}/"

    def titles(**query) -> list[str]:
        html = client.get(url, query).content.decode()
        table = html.split('id="training-set"')[1].split("</table>")[0]
        return [t for t in ("Aria", "Bolero", "Canon") if t in table]

    assert titles() == ["Aria", "Bolero"]  # by position: Bolero 0, Aria 1
    assert titles(sort="title") == ["Aria", "Bolero"]
    assert titles(sort="title", page=2) == ["Canon"]
    assert titles(sort="-title") == ["Bolero", "Canon"]
    assert titles(sort="-title", page=2) == ["Aria"]
    assert titles(q="can") == ["Canon"]
    isrc = recordings[1].isrc
    assert titles(q=f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:]}") == ["Aria"]


def test_model_version_page_shows_artifacts_and_queues_their_computation(
    client, admin, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    from attribution import tasks

    recordings = [RecordingFactory() for _ in range(2)]
    folder = write_checkpoint(tmp_path / "ckpt", recordings)
    client.post("/attribution/model-versions/new/", {"name": "v2", "checkpoint_dir": str(folder)})
    version = ModelVersion.objects.get(name="v2")
    url = f"/attribution/model-versions/{version.pk}/"
    page = client.get(url).content.decode()
    assert "Diagonal Fisher information" in page and "Cached training-set losses" in page
    assert page.count("Not computed") == 2
    assert f'data-live-status-url="{url}status/"' in page
    assert "js/live-status.js" in page or 'id="compute-artifacts"' in page

    queued = []
    # The service enqueues the task by name (a signature): catch what reaches the task.
    monkeypatch.setattr(
        tasks.compute_model_artifacts, "apply_async", lambda args, *a, **k: queued.extend(args)
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{url}compute-artifacts/")
    assert response.status_code == 302
    assert queued == [version.pk]
    assert set(version.artifacts.values_list("status", flat=True)) == {"computing"}
    event = AuditEvent.objects.get(action="model_version.artifacts_queue")
    assert event.actor == admin and event.object_id == str(version.pk)

    ModelArtifact.objects.filter(model_version=version, kind="fisher").update(progress_percent=37)
    status = client.get(f"{url}status/").json()
    fisher = next(item for item in status["items"] if item["kind"] == "fisher")
    assert fisher["percent"] == 37 and fisher["label"] == "Computing: 37 %"
    assert status["done"] is False
    page = client.get(url).content.decode()
    assert 'value="37"' in page and 'id="compute-artifacts"' not in page

    # A second request while it computes is refused, and nothing more is queued.
    refused = client.post(f"{url}compute-artifacts/", follow=True).content.decode()
    assert "already computing" in refused
    assert queued == [version.pk]

    api = APIClient()
    api.force_authenticate(admin)
    artifacts = api.get(f"{API}/model-versions/{version.pk}/artifacts/").json()
    assert {a["kind"]: a["percent"] for a in artifacts} == {"fisher": 37, "base_losses": 0}
    assert api.post(f"{API}/model-versions/{version.pk}/compute-artifacts/").status_code == 400


@pytest.mark.parametrize("role", [FINANCE, RIGHTS_HOLDER, None])
@pytest.mark.parametrize(
    "url", ["/attribution/model-versions/", "/attribution/model-versions/new/"]
)
def test_model_version_pages_are_403_for_other_roles(client, role, url):
    client.force_login(UserFactory(role=role))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("role", [FINANCE, RIGHTS_HOLDER])
def test_model_version_posts_are_403_for_other_roles(client, role, tmp_path):
    recordings = [RecordingFactory() for _ in range(2)]
    version = model_version_register(
        name="v4", checkpoint_dir=write_checkpoint(tmp_path / "c", recordings), actor=None
    )
    client.force_login(UserFactory(role=role))
    compute = f"/attribution/model-versions/{version.pk}/compute-artifacts/"
    assert client.post(compute).status_code == 403
    assert client.get(f"/attribution/model-versions/{version.pk}/status/").status_code == 403
    assert set(version.artifacts.values_list("status", flat=True)) == {"missing"}


# --- the API ----------------------------------------------------------------------------------


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


class TestModelVersionApi:
    @pytest.fixture
    def world(self):
        """A holder with its own user, and two recordings of its own."""
        mine = RightsHolderFactory(legal_name="Mine")
        me = UserFactory(role=RIGHTS_HOLDER)
        mine.users.add(me)
        own = RecordingFactory(title="Own song", shares=[(mine, Decimal(100))])
        other = RecordingFactory(title="Other song", shares=[(mine, Decimal(100))])
        return {"me": me, "own": own, "other": other}

    def test_register_and_read_training_set(self, tmp_path, world):
        admin = client_for(UserFactory(role=CATALOG_ADMIN))
        order = [world["other"], world["own"]]
        folder = write_checkpoint(tmp_path / "ckpt", order)
        response = admin.post(
            f"{API}/model-versions/", {"name": "v1", "checkpoint_dir": str(folder)}
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["training_set_size"] == 2
        assert {a["kind"]: a["status"] for a in body["artifacts"]} == {
            "fisher": "missing",
            "base_losses": "missing",
        }
        reader = client_for(world["me"])
        entries = reader.get(f"{API}/model-versions/{body['id']}/training-set/").json()["results"]
        assert [(e["position"], e["isrc"]) for e in entries] == [
            (0, world["other"].isrc),
            (1, world["own"].isrc),
        ]
        listed = reader.get(f"{API}/model-versions.json").json()["results"]
        assert [row["name"] for row in listed] == ["v1"]

    def test_unknown_recordings_in_manifest_are_listed(self, tmp_path, world):
        admin = client_for(UserFactory(role=CATALOG_ADMIN))
        folder = write_checkpoint(tmp_path / "ckpt", [world["own"]])
        manifest = json.loads((folder / "training_manifest.json").read_text())
        manifest["tracks"].append({"isrc": "QZZZZ2600001", "sha256": "0" * 64})
        (folder / "training_manifest.json").write_text(json.dumps(manifest))
        response = admin.post(
            f"{API}/model-versions/", {"name": "v1", "checkpoint_dir": str(folder)}
        )
        assert response.status_code == 400
        assert response.json()["extra"] == {"unknown_isrcs": ["QZZZZ2600001"]}

    @pytest.mark.parametrize("role", [RIGHTS_HOLDER, FINANCE, None])
    def test_only_catalog_admins_register(self, role):
        client = client_for(UserFactory(role=role))
        response = client.post(f"{API}/model-versions/", {"name": "m", "checkpoint_dir": "/x"})
        assert response.status_code == 403
        assert not ModelVersion.objects.exists()
        assert not AuditEvent.objects.exists()

    def test_compute_artifacts_is_for_catalog_admins(self, tmp_path):
        recordings = [RecordingFactory() for _ in range(2)]
        version = model_version_register(
            name="v3", checkpoint_dir=write_checkpoint(tmp_path / "c", recordings), actor=None
        )
        api = client_for(UserFactory(role=FINANCE))
        assert api.get(f"{API}/model-versions/{version.pk}/artifacts/").status_code == 200
        assert api.post(f"{API}/model-versions/{version.pk}/compute-artifacts/").status_code == 403
        assert set(version.artifacts.values_list("status", flat=True)) == {"missing"}


# --- the Django admin -------------------------------------------------------------------------


def test_catalog_admin_sees_model_versions_in_the_admin(client, tmp_path):
    listed = ModelVersionFactory(name="admin-listed-v1")
    recordings = [RecordingFactory() for _ in range(2)]
    version = model_version_register(
        name="admin-v2", checkpoint_dir=write_checkpoint(tmp_path / "c", recordings), actor=None
    )
    client.force_login(UserFactory(role=CATALOG_ADMIN, is_staff=True))
    listing = client.get("/admin/attribution/modelversion/").content.decode()
    assert "admin-listed-v1" in listing and "admin-v2" in listing
    assert client.get(f"/admin/attribution/modelversion/{listed.pk}/change/").status_code == 200
    page = client.get(f"/admin/attribution/modelversion/{version.pk}/change/").content.decode()
    # The artifacts and the training set are shown, read only: no field to edit, add or delete.
    assert recordings[1].isrc in page and "Diagonal Fisher information" in page
    assert 'name="training_set_entries-0-position"' not in page
    assert 'name="artifacts-0-DELETE"' not in page
    client.force_login(UserFactory(role=FINANCE, is_staff=True))
    assert client.get("/admin/attribution/modelversion/").status_code == 403
