"""In a real browser: a catalog admin imports a catalog in two steps (a bad row is
reported, the corrected file is uploaded, the import is confirmed), and a rights holder
opens a generation that paid them (audio player and attribution chart), on a desktop and
on a 390 px wide phone. Screenshots at each step under test-artifacts/screenshots/."""

import pytest
from playwright.sync_api import expect

from catalog.models import ImportBatch, Recording, RightsHolder
from core.services import user_create_or_update
from ledger.charts import PAID_GROUP_ID
from tests.catalog.conftest import CatalogFolder
from tests.ledger.generation_world import settled_world

PASSWORD = "browser-test-password-1"
PHONE = {"width": 390, "height": 844}


def log_in(page, live_server, username: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_url}")


def overflowing(page) -> list[str]:
    """Elements of the page's content that stick out past the viewport's right edge (what
    is inside a scrolling ``.table-wrap`` may, and the site header is not this page's)."""
    return page.evaluate(
        """() => {
          const limit = document.documentElement.clientWidth + 1;
          return [...document.querySelectorAll("main *")]
            .filter((el) => el.getBoundingClientRect().right > limit)
            .filter((el) => !(el.parentElement && el.parentElement.closest(".table-wrap")))
            .map((el) => el.tagName + (el.id ? "#" + el.id : ""));
        }"""
    )


@pytest.fixture
def data_dirs(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.django_db(transaction=True)
def test_catalog_admin_fixes_a_bad_row_then_confirms_the_import(
    live_server, page, screenshot, data_dirs, tmp_path
):
    user_create_or_update(username="cat-admin", password=PASSWORD, role="catalog_admin")
    catalog = CatalogFolder(tmp_path / "catalog")
    catalog.recordings[2][0] = "GB-ABC-26-0000X"  # row 4 of recordings.csv: a bad ISRC
    folder = catalog.write()

    log_in(page, live_server, "cat-admin", "/catalog/import/")
    screenshot("1-upload-form")
    for kind in ("rights_holders", "recordings", "ownership_shares"):
        page.set_input_files(f"input[name={kind}]", str(folder / f"{kind}.csv"))
    page.fill("input[name=audio_folder]", str(folder))
    page.click("#import-upload button[type=submit]")

    page.wait_for_selector("#import-problems")
    assert "Problems found: nothing was saved" in page.inner_text("h1")
    problem_rows = page.locator("#import-problems tbody tr")
    texts = [problem_rows.nth(i).inner_text() for i in range(problem_rows.count())]
    assert any(t.split("\t")[:3] == ["recordings", "4", "isrc"] for t in texts), texts
    assert page.locator("#confirm-import").count() == 0
    assert not Recording.objects.exists() and not RightsHolder.objects.exists()
    screenshot("2-report-with-bad-row")

    catalog.recordings[2][0] = "GB-ABC-26-00002"
    catalog.write()
    page.set_input_files("#import-reupload input[name=recordings]", str(folder / "recordings.csv"))
    page.click("#import-reupload button[type=submit]")
    page.wait_for_selector("#confirm-import")
    assert page.inner_text("h1") == "Ready to import"
    assert page.locator("#import-problems").count() == 0
    assert not Recording.objects.exists()
    screenshot("3-corrected-ready")

    page.click("#confirm-import")
    page.wait_for_selector("#imported-recordings")
    assert page.inner_text("h1") == "Imported"
    listed = page.inner_text("#imported-recordings tbody")
    for isrc in ("GBABC2600000", "GBABC2600001", "GBABC2600002"):
        assert isrc in listed
    assert Recording.objects.count() == 3
    assert ImportBatch.objects.filter(status="applied").count() == 1
    screenshot("4-imported-recordings")

    page.set_viewport_size(PHONE)
    page.reload()
    assert page.locator("#imported-recordings").is_visible()
    assert overflowing(page) == []
    screenshot("5-imported-phone")


@pytest.mark.django_db(transaction=True)
def test_holder_hears_the_generation_and_sees_the_chart(live_server, page, screenshot, data_dirs):
    world = settled_world()
    holder_user = world.holder_user
    holder_user.set_password(PASSWORD)
    holder_user.save()
    url = f"/attribution/generations/{world.generation.pk}/"

    log_in(page, live_server, holder_user.username, "/attribution/generations/")
    page.click(f"a[href='{url}']")
    page.wait_for_url(f"{live_server.url}{url}")

    assert world.generation.prompt in page.inner_text("#generation")
    # The player loads the WAV through the access-checked view.
    duration = None
    for _ in range(150):  # the page's CSP forbids wait_for_function's eval; poll instead
        state = page.evaluate("document.querySelector('#generation-audio').readyState")
        if state >= 1:  # HAVE_METADATA: the WAV was fetched and decoded
            duration = page.evaluate("document.querySelector('#generation-audio').duration")
            break
        page.wait_for_timeout(100)
    assert duration is not None, "the audio never loaded"
    assert abs(duration - 0.4) < 0.05
    # The settled generation's chart is the explanation's: the cut-off and the paid tracks.
    chart = page.locator("#explain-chart svg:visible")
    assert chart.count() == 1
    assert page.locator(f"#explain-chart g#{PAID_GROUP_ID} use").count() > 0
    assert page.locator("#attributed-tracks tbody tr").count() >= 1
    screenshot("1-generation-desktop")

    page.set_viewport_size(PHONE)
    page.reload()
    assert chart.count() == 1  # now the drawing for phones
    assert page.locator(f"#explain-chart g#{PAID_GROUP_ID}-narrow").is_visible()
    assert page.locator("#generation-audio").bounding_box()["width"] <= PHONE["width"]
    assert chart.bounding_box()["width"] <= PHONE["width"]
    assert overflowing(page) == []
    screenshot("2-generation-phone")


@pytest.mark.django_db(transaction=True)
def test_admin_watches_a_run_progress_live_then_reruns_it(
    live_server, page, screenshot, data_dirs, monkeypatch
):
    from attribution import tasks
    from attribution.models import AttributionRun
    from tests.ledger.generation_world import generation_with_audio

    queued = []
    monkeypatch.setattr(tasks.prepare_run, "apply_async", lambda args, *a, **k: queued.extend(args))
    world = settled_world()
    admin = world.admin
    admin.set_password(PASSWORD)
    admin.save()
    generation = generation_with_audio(world.generation.model_version, world.audio)
    run = AttributionRun.objects.create(
        generation=generation,
        model_version=generation.model_version,
        status=AttributionRun.Status.RUNNING,
        progress_percent=10,
        progress_stage="unlearning",
        checkpoint_sha256=generation.model_version.checkpoint_sha256,
        manifest_sha256=generation.model_version.manifest_sha256,
    )
    log_in(page, live_server, admin.username, "/attribution/jobs/")
    bar = page.locator(f'[data-live-key="run-{run.pk}"] progress')
    assert bar.get_attribute("value") == "10"
    screenshot("1-running")

    # The page follows the run without a reload (static/js/live-status.js polls).
    AttributionRun.objects.filter(pk=run.pk).update(
        progress_percent=60, progress_stage="scoring", eta_seconds=90
    )
    expect(bar).to_have_attribute("value", "60")
    assert "about 1 min 30 s left" in page.inner_text(f'[data-live-key="run-{run.pk}"]')

    # When it fails, the page reloads once and offers Re-run with the reason.
    AttributionRun.objects.filter(pk=run.pk).update(
        status=AttributionRun.Status.FAILED, error="Exceeded its time limit of 3000 s."
    )
    page.wait_for_selector(f'[data-rerun="{run.pk}"]')
    assert "Exceeded its time limit" in page.inner_text(f'tr[data-run="{run.pk}"]')
    screenshot("2-failed-with-rerun")

    page.click(f'[data-rerun="{run.pk}"]')
    page.wait_for_selector(".messages")
    rerun = AttributionRun.objects.filter(generation=generation).latest("id")
    assert rerun.pk != run.pk and rerun.status == "queued" and queued == [rerun.pk]
    assert f"re-run as run {rerun.pk}" in page.inner_text(".messages")
    page.set_viewport_size(PHONE)
    page.reload()
    assert overflowing(page) == []
    screenshot("3-rerun-queued-phone")


@pytest.mark.django_db(transaction=True)
def test_admin_registers_a_model_version_and_watches_its_artifacts(
    live_server, page, screenshot, data_dirs, tmp_path, monkeypatch
):
    from attribution import tasks
    from attribution.models import ModelArtifact, ModelVersion
    from tests.attribution.test_model_versions import write_checkpoint
    from tests.catalog.factories import RecordingFactory

    queued = []
    # The service enqueues the task by name (a signature): catch what reaches the task.
    monkeypatch.setattr(
        tasks.compute_model_artifacts, "apply_async", lambda args, *a, **k: queued.extend(args)
    )
    user_create_or_update(username="cat-admin", password=PASSWORD, role="catalog_admin")
    folder = write_checkpoint(tmp_path / "ckpt", [RecordingFactory() for _ in range(3)])

    log_in(page, live_server, "cat-admin", "/attribution/model-versions/new/")
    page.fill("input[name=name]", "browser-v1")
    page.fill("input[name=checkpoint_dir]", str(folder))
    page.click("#register-model-version button[type=submit]")
    version = ModelVersion.objects.get(name="browser-v1")
    page.wait_for_url(f"{live_server.url}/attribution/model-versions/{version.pk}/")
    assert page.locator("#training-set tbody tr").count() == 3
    screenshot("1-registered")

    page.click("#compute-artifacts")
    page.wait_for_selector(".messages")
    assert queued == [version.pk]
    fisher = page.locator('[data-live-key="artifact-fisher"]')
    assert "Computing: 0 %" in fisher.inner_text()
    ModelArtifact.objects.filter(model_version=version, kind="fisher").update(progress_percent=55)
    expect(fisher.locator("progress")).to_have_attribute("value", "55")
    assert "Computing: 55 %" in fisher.inner_text()
    screenshot("2-computing")

    page.set_viewport_size(PHONE)
    page.reload()
    assert overflowing(page) == []
    screenshot("3-computing-phone")
