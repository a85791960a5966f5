"""Ingest of every real file in ../shared/data/slides, the flat-image path and duplicates."""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command

from apps.slides import services
from apps.slides.models import Slide, SlideStatus
from tests.conftest import SHARED_DATA, SLIDES_DIR

pytestmark = pytest.mark.django_db

BROKEN = {
    "broken.svs": "not a slide OpenSlide can read: unsupported or missing image file",
    "unopenable.tiff": "not a slide OpenSlide can read: unsupported TIFF compression",
    "unreadable.svs": "the slide file is damaged or unreadable: Bogus marker length",
}


def test_aperio_slide_reports_its_real_metadata(ingest_path):
    slide = ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")
    assert slide.status == SlideStatus.READY, slide.error
    assert (slide.width, slide.height) == (2220, 2967)
    assert slide.vendor == "aperio"
    assert slide.mpp_x == pytest.approx(0.499) and slide.mpp_y == pytest.approx(0.499)
    assert slide.objective_power == 20
    assert slide.levels == [{"width": 2220, "height": 2967, "downsample": 1.0}]
    assert set(slide.associated_images) == {"label", "macro", "thumbnail"}
    assert slide.file_size == (SLIDES_DIR / "cmu-1-small-region.svs").stat().st_size
    assert len(slide.sha256) == 64


def test_generic_tiff_keeps_its_pyramid_and_gets_no_invented_scale(ingest_path):
    slide = ingest_path(SLIDES_DIR / "boxes.tiff")
    assert slide.status == SlideStatus.READY
    assert slide.vendor == "generic-tiff"
    assert [(lv["width"], lv["height"]) for lv in slide.levels] == [
        (300, 250),
        (150, 125),
        (75, 62),
        (37, 31),
    ]
    # The file carries a 72 dpi placeholder, which is not a microscope scale.
    assert slide.mpp_x is None and not slide.has_scale


def test_small_svs_is_ready(ingest_path):
    slide = ingest_path(SLIDES_DIR / "small.svs")
    assert slide.status == SlideStatus.READY
    assert (slide.width, slide.height) == (16, 16)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_fails_with_a_message_a_person_understands(ingest_path, name):
    slide = ingest_path(SLIDES_DIR / name)
    assert slide.status == SlideStatus.FAILED
    assert slide.error.startswith(BROKEN[name])


def test_broken_files_do_not_stop_the_others_from_serving(ingest_path, client, owner):
    for name in BROKEN:
        ingest_path(SLIDES_DIR / name)
    good = ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")
    client.force_login(owner)
    assert client.get(f"/slides/{good.pk}_files/0/0_0.jpeg").status_code == 200
    assert Slide.objects.filter(status=SlideStatus.FAILED).count() == 3


def test_demo_smear_is_large_and_stamped_at_a_tenth_of_a_micron(ingest_path, demo_slide_file):
    slide = ingest_path(demo_slide_file)
    assert slide.status == SlideStatus.READY
    assert slide.width >= 20_000 and slide.height >= 20_000
    assert slide.mpp_x == pytest.approx(0.1)
    assert len(slide.levels) >= 7


def test_flat_jpeg_is_converted_once_to_a_pyramid(ingest_path, tmp_path):
    photo = tmp_path / "smear.jpg"
    shutil.copy(SHARED_DATA / "smears/BCCD/JPEGImages/BloodImage_00338.jpg", photo)
    slide = ingest_path(photo)
    assert slide.status == SlideStatus.READY, slide.error
    assert slide.converted_from_flat
    assert (slide.width, slide.height) == (640, 480)
    assert slide.viewable_file.name == "pyramid.tiff" and slide.viewable_file.exists()
    assert slide.mpp_x is None  # a flat photo states no scale


def test_png_that_claims_to_be_jpeg_is_still_read(ingest_path):
    slide = ingest_path(SHARED_DATA / "smears/Chula-RBC-12/Dataset/722.jpg")
    assert slide.status == SlideStatus.READY, slide.error
    assert slide.converted_from_flat


def test_registering_the_same_file_twice_is_recognised(project, owner):
    path = SLIDES_DIR / "small.svs"
    first = services.register_path(project=project, path=path, user=owner)
    again = services.register_path(project=project, path=path, user=owner)
    assert first.created and not again.created
    assert again.slide.pk == first.slide.pk
    assert Slide.objects.filter(project=project).count() == 1


def test_ingest_claims_the_row_so_a_second_worker_does_nothing(project, owner):
    intake = services.register_path(project=project, path=SLIDES_DIR / "small.svs", user=owner)
    assert services.ingest(intake.slide.pk) is not None
    assert services.ingest(intake.slide.pk) is None


def test_import_slides_registers_a_folder_and_reports(project, capsys):
    call_command("import_slides", str(SLIDES_DIR), "--project", project.name)
    out = capsys.readouterr().out
    assert "6 registered" in out
    assert Slide.objects.filter(project=project).count() == 6
    assert Slide.objects.filter(project=project, status=SlideStatus.PENDING).count() == 6


def test_import_slides_copy_puts_the_file_in_the_content_addressed_store(project, slide_store):
    call_command(
        "import_slides", str(SLIDES_DIR / "small.svs"), "--project", str(project.pk), "--copy"
    )
    slide = Slide.objects.get(project=project)
    assert slide.stored_file.is_relative_to(slide_store)
    assert slide.stored_file.parent.name == slide.sha256


def test_the_sweep_queues_again_an_ingest_no_worker_took_and_only_that_one(
    project, owner, settings, django_capture_on_commit_callbacks
):
    """A lost queue entry (a broker restart) leaves a slide pending and unclaimed: the sweep
    queues it again once SLIDE_INGEST_REQUEUE_S has passed; a fresh one is left to its entry."""
    from datetime import timedelta

    from django.utils import timezone
    from django_q.conf import Conf

    settings.SLIDE_INGEST_REQUEUE_S = 60
    path = SLIDES_DIR / "cmu-1-small-region.svs"
    lost = services.register_path(project=project, path=path, user=owner).slide
    Slide.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    fresh = services.register_path(project=project, path=SLIDES_DIR / "small.svs", user=owner).slide
    assert Conf.SYNC, "run with Q_SYNC=true (scripts/test.sh does): queued work runs inline"

    with django_capture_on_commit_callbacks(execute=True):
        assert services.requeue_lost_ingests() == 1

    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert (lost.status, lost.error) == ("ready", "")
    assert fresh.status == "pending"
