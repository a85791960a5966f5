"""Review, sign-off and amendment of a real run's report in a real browser (Debian chromium)."""

from __future__ import annotations

import time

import pytest

from apps.reports.models import ReportVersion
from tests.browser import *  # noqa: F403
from tests.browser import login
from tests.conftest import ARTIFACTS
from tests.reports.conftest import REVIEWER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def flushable(transactional_db):
    """The live-server test database is flushed after the test, and the guards of migration 0002
    refuse to delete a signed report: lift them to flush here, then put them back."""
    yield
    from importlib import import_module

    from django.core.management import call_command
    from django.db import OperationalError, connection

    guards = import_module("apps.reports.migrations.0002_signed_reports_are_immutable")
    # The live server may still be answering the page's last lazy crop requests, which holds
    # SQLite's shared-cache lock for a moment: retry the schema change until it is free.
    for attempt in range(20):
        try:
            with connection.schema_editor() as editor:
                guards.unguard(None, editor)
            break
        except OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    call_command("flush", interactive=False, verbosity=0)
    with connection.schema_editor() as editor:
        guards.guard(None, editor)


def remaining(page) -> int:
    return int(page.inner_text("#review .remaining"))


def wait_remaining(page, n: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#review .remaining').textContent === '{n}'",
        timeout=20_000,
    )


def myeloblasts(page) -> int:
    return int(page.inner_text('tr[data-key="myeloblast"] .count'))


def reclassify_first_to_myeloblast(page) -> None:
    """Press the myeloblast hotkey on the first cell that is not one; the DCC row goes up."""
    page.wait_for_selector(".gallery figure")
    captions = page.locator(".gallery figcaption").all_inner_texts()
    index = next(i for i, c in enumerate(captions) if not c.startswith("Myeloblast"))
    page.locator(".gallery figure").nth(index).click()
    before = myeloblasts(page)
    page.keyboard.press("m")
    page.wait_for_function(
        f"() => document.querySelector('tr[data-key=\"myeloblast\"] .count').textContent"
        f" === '{before + 1}'",
        timeout=20_000,
    )


def crops_arrive_as_one_decoded_sheet(page) -> None:
    """The first page's crops are squares of one sprite sheet, loaded and decoded."""
    sources = page.eval_on_selector_all(
        ".gallery figure img",
        "imgs => imgs.map(i => [i.currentSrc, i.complete && i.naturalWidth > 0])",
    )
    assert len(sources) == min(200, remaining(page))
    assert len({src for src, _ in sources}) == 1 and "sprite.jpeg" in sources[0][0]
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gallery figure img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def clicking_a_crop_jumps_the_viewer_to_its_cell(page) -> None:
    """Click the third crop: the embedded slide viewer centres on that cell's box."""
    page.wait_for_function("() => window.bmadccViewer && window.bmadccViewer.world.getItemCount()")
    figure = page.locator(".gallery figure").nth(2)
    cell_id = figure.get_attribute("data-id")
    figure.click()
    page.wait_for_selector(f'#report-viewer[data-cell="{cell_id}"]', timeout=20_000)
    box = ReportVersion.objects.get(number=1).review_set.annotations.get(pk=cell_id)
    page.wait_for_timeout(800)  # the pan's animation
    centre = page.evaluate(
        """() => { const v = window.bmadccViewer.viewport;
                   const c = v.viewportToImageCoordinates(v.getCenter(true));
                   return [c.x, c.y]; }"""
    )
    side = max(box.max_x - box.min_x, box.max_y - box.min_y)
    assert abs(centre[0] - (box.min_x + box.max_x) / 2) < side
    assert abs(centre[1] - (box.min_y + box.max_y) / 2) < side
    assert page.locator("#report-viewer .cell-marker").count() == 1


def test_a_reviewer_reviews_every_flagged_cell_signs_and_amends(
    browser_page, live_server, finished_run, reviewer
) -> None:
    reviewer.first_name, reviewer.last_name = "Rosa", "Pathologist"
    reviewer.save()
    page = browser_page
    login(page, live_server, "reviewer", REVIEWER_PASSWORD)
    page.goto(f"{live_server.url}/analyses/{finished_run.pk}/report/")
    page.wait_for_selector(".gallery figure")
    assert page.inner_text(".groups button.active").startswith("Needs review")
    left = remaining(page)
    assert left == finished_run.summary["review_count"] > 0
    crops_arrive_as_one_decoded_sheet(page)
    clicking_a_crop_jumps_the_viewer_to_its_cell(page)

    reclassify_first_to_myeloblast(page)
    left -= 1
    wait_remaining(page, left)
    page.locator(".gallery figure").first.click()
    while left:
        unlooked = page.locator(".gallery figure:not(.looked)")
        if unlooked.count() == 0:
            page.click("#review .next")
            page.wait_for_function("() => document.querySelector('.gallery figure:not(.looked)')")
            page.locator(".gallery figure:not(.looked)").first.click()
            continue
        if "selected" not in (
            page.locator(".gallery figure.selected").get_attribute("class") or ""
        ) or ("looked" in (page.locator(".gallery figure.selected").get_attribute("class") or "")):
            unlooked.first.click()
        page.keyboard.press("Enter")
        left -= 1
        wait_remaining(page, left)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-reviewed.png"), full_page=False)

    page.fill(".sign-form input[name=password]", REVIEWER_PASSWORD)
    page.click(".sign-form button[type=submit]")
    page.wait_for_selector(".signature.valid", timeout=20_000)
    assert "Rosa Pathologist" in page.inner_text(".signature")
    assert "reviewed and approved as final report" in page.inner_text(".signature")
    # An edit of the signed report, sent by hand, is refused.
    cell = ReportVersion.objects.get(report__run=finished_run).review_set.annotations.first()
    status = page.evaluate(
        """async ([url, version]) => {
            const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
            const r = await fetch(url, {method: "POST", credentials: "same-origin",
              headers: {"Content-Type": "application/json", "X-CSRFToken": token},
              body: JSON.stringify({label: "monocyte", version})});
            return r.status; }""",
        [f"/api/analyses/{finished_run.pk}/report/cells/{cell.pk}/reclassify/", cell.version],
    )
    assert status == 409

    page.fill(".amend-form input[name=reason]", "one more myeloblast on re-examination")
    page.click(".amend-form button[type=submit]")
    page.wait_for_selector("#review .gallery figure", timeout=20_000)
    assert "AMENDED" in page.inner_text(".report-status")
    reclassify_first_to_myeloblast(page)
    page.fill(".sign-form input[name=password]", REVIEWER_PASSWORD)
    page.click(".sign-form button[type=submit]")
    page.wait_for_selector(".signature.valid", timeout=20_000)
    assert "amended, signed" in page.inner_text(".report-status")
    page.goto(f"{live_server.url}/analyses/{finished_run.pk}/report/?version=1")
    assert "superseded by amendment 2" in page.inner_text(".report-status")
    assert page.locator(".signature.valid").count() == 1
    # The slide page lists the run, done and signed, with a link to its report.
    page.goto(f"{live_server.url}/slides/{finished_run.slide_id}/view/")
    row = page.wait_for_selector(f'[data-testid=runs] tr[data-run="{finished_run.pk}"]')
    assert row.get_attribute("data-signed") == "true"
    assert "done" in row.inner_text() and "signed (version 2)" in row.inner_text()
    page.wait_for_load_state("networkidle")  # no request left for the flush to race


def test_a_manual_count_keyed_to_300_is_compared_with_the_report(
    browser_page, live_server, finished_run, reviewer, django_user_model
) -> None:
    from apps.annotations.models import LabelClass
    from ml.metrics import lins_ccc, pearson_r
    from tests.reports.test_manual_count import manual_sequence, percents

    page = browser_page
    login(page, live_server, "reviewer", REVIEWER_PASSWORD)
    page.goto(f"{live_server.url}/analyses/{finished_run.pk}/report/")
    rows = [
        {"key": key, "count": int(page.inner_text(f'tr[data-key="{key}"] .count'))}
        for key in page.locator("table.dcc tr[data-key]").evaluate_all(
            "rows => rows.map(r => r.dataset.key)"
        )
    ]
    sequence = manual_sequence(rows)
    hotkey = dict(
        LabelClass.objects.filter(project=finished_run.slide.project).values_list("key", "hotkey")
    )
    page.goto(f"{live_server.url}/slides/{finished_run.slide_id}/manual-count/")
    cues = []
    for i, key in enumerate(["myeloblast", *sequence]):
        page.keyboard.press(hotkey[key])
        if i == 0:
            page.keyboard.press("Backspace")  # a slip, undone
            assert page.inner_text("#counter .total") == "0"
        elif i in (100, 200, 300):
            cues.append(page.inner_text("#counter .cue"))
    assert cues == ["100 cells", "200 cells", "300 cells"]
    assert page.inner_text("#counter .total") == "300"
    page.wait_for_function("() => document.getElementById('counter').dataset.saved === '300'")

    page.goto(f"{live_server.url}/analyses/{finished_run.pk}/report/")
    auto = percents({r["key"]: r["count"] for r in rows})
    manual = percents({k: sequence.count(k) for k in set(sequence)})
    assert page.inner_text("#comparison .r") == f"{pearson_r(auto, manual):.4f}"
    assert page.inner_text("#comparison .ccc") == f"{lins_ccc(auto, manual):.4f}"
