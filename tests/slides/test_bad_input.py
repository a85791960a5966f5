"""Hostile files and paths: decompression bombs end `failed` with a reason, paths are refused.

A DZI level of -1 or 10^12 is in test_tile_fast_path (both paths).
Each bomb goes through the real upload API and the real ingest task (django-q2 in sync mode),
while the ingest's memory is sampled; a good slide keeps serving tiles throughout.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from apps.slides import services, storage
from apps.slides.errors import OutsideImportRoots, StoreWriteRefused, UnsafeFilename
from apps.slides.models import Slide, SlideStatus
from ml import limits
from tests.conftest import SHARED_DATA, SLIDE_FILE, SLIDES_DIR
from tests.slides.crafted import png_bomb, tiled_tiff

pytestmark = pytest.mark.django_db

#: How much the ingest of one hostile file may grow the process (resident memory).
RSS_BUDGET = 300 * 1024 * 1024


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples this process's resident memory every 5 ms while the block runs."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss()
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.began

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.fixture
def upload_and_ingest(api, member, project, monkeypatch, django_capture_on_commit_callbacks):
    """Upload a file through the API, then run the queued ingest task in-process."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    api.force_authenticate(member)

    def _go(path: Path, name: str | None = None) -> tuple[Slide, PeakRSS]:
        upload = SimpleUploadedFile(name or path.name, path.read_bytes())
        with django_capture_on_commit_callbacks() as queued:
            response = api.post(
                "/api/slides/", {"file": upload, "project": project.pk}, format="multipart"
            )
        assert response.status_code == 201, response.content
        with PeakRSS() as rss:  # the ingest task alone, as the worker runs it
            for callback in queued:
                callback()
        return Slide.objects.get(pk=response.json()["id"]), rss

    return _go


def _bombs(tmp: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (file, upload name, start of the reason the slide records)."""
    jpeg = tmp / "photo.jpg"
    shutil.copy(SHARED_DATA / "smears/BCCD/JPEGImages/BloodImage_00338.jpg", jpeg)
    return {
        "png declaring 100k x 100k px": (
            png_bomb(tmp / "bomb.png"),
            "bomb.png",
            "the image declares 100,000 x 100,000 px, more than the 1,000,000,000 px",
        ),
        "tiff whose tiles point past its end": (
            tiled_tiff(tmp / "past-end.tiff", [(4096, 4096)], offsets_past_end=True),
            "past-end.tiff",
            "the slide file is damaged or unreadable: TIFFRGBAImageGet failed",
        ),
        "jpeg named .svs": (
            jpeg,
            "scan.svs",
            "not a slide OpenSlide can read",
        ),
        "100k px tiff without a pyramid": (
            tiled_tiff(tmp / "flat-100k.tiff", [(100_000, 100_000)]),
            "flat-100k.tiff",
            "the slide has no pyramid level small enough to reduce: 100,000 x 100,000 px",
        ),
    }


@pytest.mark.parametrize(
    "bomb",
    [
        "png declaring 100k x 100k px",
        "tiff whose tiles point past its end",
        "jpeg named .svs",
        "100k px tiff without a pyramid",
    ],
)
def test_decompression_bomb_upload_fails_with_a_reason_in_bounded_memory(
    upload_and_ingest, tmp_path, bomb, client, owner, ingest_path
):
    good = ingest_path(SLIDE_FILE)
    path, name, reason = _bombs(tmp_path)[bomb]
    slide, rss = upload_and_ingest(path, name)
    assert slide.status == SlideStatus.FAILED
    assert slide.error.startswith(reason), slide.error
    assert rss.growth < RSS_BUDGET, f"ingest grew the process by {rss.growth / 2**20:.0f} MiB"
    assert rss.seconds < 15  # refused from the header, not after decoding
    # Nothing half-made is left beside it, and other users' slides keep serving.
    assert not (settings_store(slide) / "pyramid.tiff").exists()
    client.force_login(owner)
    assert client.get(f"/slides/{good.pk}_files/0/0_0.jpeg").status_code == 200


def settings_store(slide: Slide) -> Path:
    return slide.stored_file.parent


def test_a_jpeg_named_svs_names_the_mismatch(upload_and_ingest, tmp_path):
    path, name, _ = _bombs(tmp_path)["jpeg named .svs"]
    slide, _ = upload_and_ingest(path, name)
    assert "a .svs file must be a whole-slide image, and this one is not" in slide.error


def test_the_same_jpeg_under_its_own_name_is_still_converted(upload_and_ingest, tmp_path):
    path, _, _ = _bombs(tmp_path)["jpeg named .svs"]
    slide, _ = upload_and_ingest(path, "photo.jpg")
    assert slide.status == SlideStatus.READY, slide.error


def test_pillow_and_libvips_limits_are_set_explicitly():
    import pyvips
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS == limits.MAX_IMAGE_PIXELS
    assert pyvips.cache_get_max_mem() == limits.VIPS_CACHE_MAX_MEM
    assert pyvips.cache_get_max_files() == limits.VIPS_CACHE_MAX_FILES


# -- path tricks ----------------------------------------------------------------------------
def test_import_slides_refuses_a_symlink_pointing_out_of_the_allowed_roots(
    project, settings, tmp_path, capsys
):
    inside, outside = tmp_path / "scans", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    shutil.copy(SLIDES_DIR / "small.svs", outside / "secret.svs")
    (inside / "innocent.svs").symlink_to(outside / "secret.svs")
    shutil.copy(SLIDES_DIR / "boxes.tiff", inside / "boxes.tiff")
    settings.SLIDE_IMPORT_ROOTS = [inside.resolve()]
    call_command("import_slides", str(inside), "--project", project.name)
    captured = capsys.readouterr()
    assert "1 registered, 0 already present, 1 refused" in captured.out
    assert "innocent.svs is outside the folders slides may be registered from" in captured.err
    assert list(Slide.objects.values_list("original_filename", flat=True)) == ["boxes.tiff"]


def test_registering_a_file_outside_the_roots_is_refused(project, owner, settings):
    settings.SLIDE_IMPORT_ROOTS = [SLIDES_DIR.resolve()]
    with pytest.raises(OutsideImportRoots):
        services.register_path(project=project, path=Path("/etc/hostname"), user=owner)
    with pytest.raises(OutsideImportRoots):
        services.register_path(project=project, path=SLIDES_DIR / ".." / "x.svs", user=owner)


def test_an_upload_named_with_dot_dot_lands_inside_the_store(api, member, project, slide_store):
    api.force_authenticate(member)
    content = (SLIDES_DIR / "small.svs").read_bytes()
    response = api.post(
        "/api/slides/",
        {"file": SimpleUploadedFile("../../escape.svs", content), "project": project.pk},
        format="multipart",
    )
    assert response.status_code == 201
    slide = Slide.objects.get(pk=response.json()["id"])
    # Django's multipart parser keeps the base name only; nothing is written outside the store.
    assert slide.original_filename == "escape.svs"
    assert slide.stored_file.resolve().is_relative_to(slide_store.resolve())
    assert not (slide_store.parent / "escape.svs").exists()


@pytest.mark.parametrize("name", ["../../escape.svs", "a/b.svs", "..", "c:\\x\\y.svs"])
def test_the_upload_service_refuses_a_file_name_with_a_folder(project, member, name):
    with pytest.raises(UnsafeFilename):
        services.take_in_upload(project=project, chunks=[b"x"], filename=name, user=member)
    assert not Slide.objects.exists()


# -- the store never writes into a slide registered in place --------------------------------
def test_the_store_refuses_to_write_over_a_slide_registered_in_place(
    ingest_path, slide_store, tmp_path
):
    own = tmp_path / "lab" / "scan.svs"
    own.parent.mkdir()
    shutil.copy(SLIDES_DIR / "small.svs", own)
    slide = ingest_path(own)
    # A symlink planted in the store that points at the lab's own file.
    link = slide_store / "ab" / "planted.svs"
    link.parent.mkdir()
    link.symlink_to(own)
    with pytest.raises(StoreWriteRefused):
        storage.writable_target(Path("ab") / "planted.svs")
    with pytest.raises(StoreWriteRefused):
        storage.writable_target(Path("..") / "lab" / "scan.svs")
    assert own.read_bytes() == (SLIDES_DIR / "small.svs").read_bytes()
    assert slide.status == SlideStatus.READY


def test_a_store_inside_the_shared_data_is_refused(settings, project):
    settings.SLIDE_STORAGE_DIR = SHARED_DATA / "slides"
    with pytest.raises(StoreWriteRefused, match="shared sample data"):
        storage.writable_target(Path("ab") / "x.svs")
