"""A generation's attribution evidence: downloaded as its readers may see it, and enough,
alone, to recompute exactly what was booked."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from core.roles import FINANCE, RIGHTS_HOLDER
from ledger import services
from ledger.evidence import evidence_recompute
from ledger.splits import SplitPolicy
from tests.ledger import factories
from tests.ledger.conftest import user_with_role

pytestmark = pytest.mark.django_db

POLICY = SplitPolicy(temperature=Decimal("0.5"), top_k=7, min_share=Decimal("0.01"))


@pytest.fixture
def settled(small_catalog):
    """One generation of 12 co-owned tracks, settled with a cut-off that drops some."""
    model_version, holders = small_catalog
    generation = factories.generation_create(model_version=model_version, revenue_minor=12347)
    run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed=7))
    entry = services.generation_settle(attribution_run=run, policy=POLICY)
    return entry.settlement, holders


def download(user, generation_id: int):
    client = Client()
    client.force_login(user)
    return client.get(f"/attribution/generations/{generation_id}/evidence.json")


def booked_holder_amounts(settlement) -> dict[int, int]:
    return dict(settlement.holders.values_list("rights_holder_id", "amount"))


def test_full_evidence_recomputes_every_booked_amount_and_the_provenance_hash(settled):
    settlement, _ = settled
    response = download(user_with_role(FINANCE), settlement.generation_id)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(
        f'filename="evidence-generation-{settlement.generation_id}.json"'
    )
    evidence = json.loads(response.content)
    assert evidence["scope"] == "full"
    assert len(evidence["training_set"]) == 12 and all(
        "isrc" in track for track in evidence["training_set"]
    )
    for key in ("checkpoint_sha256", "manifest_sha256", "scores_sha256", "policy"):
        assert evidence["settlement"][key] == getattr(settlement, key)
    assert evidence["attribution_run"]["engine_config"] == {"method": "unlearning"}
    result = evidence_recompute(evidence)
    assert result.ok, result.checks
    assert result.holder_amounts == booked_holder_amounts(settlement)
    assert result.track_amounts == dict(settlement.tracks.values_list("position", "amount"))
    assert len(result.track_amounts) < 12  # the cut-off dropped tracks, and that was checked
    assert any("provenance" in name for name, passed, _ in result.checks if passed)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["training_set"][3].update(score=e["training_set"][3]["score"] + 1e-9),
        lambda e: e["settlement"]["policy"].update(temperature="0.6"),
        lambda e: e["settlement"].update(revenue_minor=12348),
        lambda e: e["booked"]["holders"][0].__setitem__(1, e["booked"]["holders"][0][1] + 1),
        lambda e: e["ownership"][next(iter(e["ownership"]))].reverse(),
    ],
    ids=["a score", "the policy", "the revenue", "a booked amount", "ownership order"],
)
def test_a_changed_evidence_file_no_longer_recomputes(settled, tamper):
    settlement, _ = settled
    evidence = json.loads(download(user_with_role(FINANCE), settlement.generation_id).content)
    assert evidence_recompute(evidence).ok
    tamper(evidence)
    assert not evidence_recompute(evidence).ok


def test_a_holders_evidence_recomputes_their_amount_and_shows_no_one_else(settled):
    settlement, holders = settled
    holder = holders[0]
    response = download(user_with_role(RIGHTS_HOLDER, [holder]), settlement.generation_id)
    assert response.status_code == 200
    evidence = json.loads(response.content)
    assert evidence["scope"] == "holder"
    others = {h.pk for h in holders[1:]}
    assert [line[0] for line in evidence["booked"]["holders"]] == [holder.pk]
    for shares in evidence["ownership"].values():
        assert not {h for h, _ in shares} & others
        assert holder.pk in {h for h, _ in shares}
    assert "ownership_snapshot" not in evidence["settlement"]
    assert "track_recordings" not in evidence["booked"]
    named = [t for t in evidence["training_set"] if "isrc" in t]
    assert 0 < len(named) < 12  # their own tracks only
    assert len(evidence["training_set"]) == 12  # every score, to standardise them
    result = evidence_recompute(evidence)
    assert result.ok, result.checks
    assert result.holder_amounts == {holder.pk: booked_holder_amounts(settlement)[holder.pk]}


def test_evidence_is_only_for_those_who_may_see_the_generation(settled, small_catalog):
    settlement, _ = settled
    model_version, _ = small_catalog
    outsider = user_with_role(RIGHTS_HOLDER, [factories.RightsHolderFactory()])
    assert download(outsider, settlement.generation_id).status_code == 404
    assert (
        Client()
        .get(f"/attribution/generations/{settlement.generation_id}/evidence.json")
        .url.startswith("/accounts/login/")
    )
    unsettled = factories.generation_create(model_version=model_version)
    assert download(user_with_role(FINANCE), unsettled.pk).status_code == 404


def test_the_recompute_script_runs_on_the_file_alone(settled, tmp_path):
    settlement, _ = settled
    path = tmp_path / "evidence.json"
    path.write_bytes(download(user_with_role(FINANCE), settlement.generation_id).content)
    # A bare interpreter: no Django settings, only the repository's ledger package.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(settings.BASE_DIR))}
    ok = subprocess.run(
        [sys.executable, "-m", "ledger.evidence", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "reproduced exactly" in ok.stdout and "FAIL" not in ok.stdout
    evidence = json.loads(path.read_text())
    evidence["training_set"][0]["score"] += 1.0
    path.write_text(json.dumps(evidence))
    bad = subprocess.run(
        [sys.executable, "-m", "ledger.evidence", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1 and "FAIL scores hash" in bad.stdout


def test_the_api_gives_the_same_evidence_as_the_page(settled):
    from rest_framework.test import APIClient

    settlement, holders = settled
    for user in (user_with_role(FINANCE), user_with_role(RIGHTS_HOLDER, [holders[1]])):
        api = APIClient()
        api.force_authenticate(user)
        response = api.get(f"/attribution/api/generations/{settlement.generation_id}/evidence/")
        assert response.status_code == 200
        assert response.json() == json.loads(download(user, settlement.generation_id).content)
        assert evidence_recompute(response.json()).ok
    outsider = APIClient()
    outsider.force_authenticate(user_with_role(RIGHTS_HOLDER, [factories.RightsHolderFactory()]))
    url = f"/attribution/api/generations/{settlement.generation_id}/evidence/"
    assert outsider.get(url).status_code == 404
