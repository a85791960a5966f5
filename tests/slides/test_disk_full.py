"""An upload that fills the slide store's disk fails with the reason and leaves nothing behind.

The store is a 4 MiB tmpfs mounted for the test (root only: CI's container runs as root; the
test skips, saying why, where mounting is not allowed). Django spools the upload onto the
store's disk (FILE_UPLOAD_TEMP_DIR), and the store then writes its own copy: the disk fills
in the first step for a large file and in the second for one that only fits once.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import SLIDE_FILE

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def small_disk(tmp_path, settings, slide_store):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; run the fault tests as root (CI's container)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        settings.SLIDE_STORAGE_DIR = mount / "store"
        settings.FILE_UPLOAD_TEMP_DIR = str(mount / "store" / ".upload-tmp")
        os.makedirs(settings.FILE_UPLOAD_TEMP_DIR)
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # spool to disk, as a slide does
        yield settings.SLIDE_STORAGE_DIR
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def files_under(folder) -> list[str]:
    return [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]


def upload(api, project, name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return api.post(
        "/api/slides/",
        {"project": project.pk, "file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def test_an_upload_larger_than_the_free_space_fails_with_the_reason_and_keeps_nothing(
    api, owner, project, small_disk
):
    from apps.slides.models import Slide

    api.force_authenticate(owner)
    response = upload(api, project, "big.svs", os.urandom(6 * 1024 * 1024))

    assert response.status_code == 507, response.content
    assert "disk is full" in response.json()["detail"]
    assert files_under(small_disk) == []
    assert not Slide.objects.exists()


def test_an_upload_that_fills_the_disk_while_stored_fails_and_keeps_nothing(
    api, owner, project, small_disk
):
    """2.5 MiB spools (fits), then the store's own copy runs out of room half way."""
    from apps.slides.models import Slide

    api.force_authenticate(owner)
    response = upload(api, project, "half.svs", os.urandom(2_500_000))

    assert response.status_code == 507, response.content
    assert "nothing was kept" in response.json()["detail"]
    assert files_under(small_disk) == []
    assert not Slide.objects.exists()


def test_the_store_takes_a_slide_that_fits_once_the_failed_upload_is_gone(
    api, owner, project, small_disk
):
    api.force_authenticate(owner)
    assert upload(api, project, "big.svs", os.urandom(6 * 1024 * 1024)).status_code == 507

    response = upload(api, project, SLIDE_FILE.name, SLIDE_FILE.read_bytes())

    assert response.status_code == 201, response.content
    assert [os.path.basename(f) for f in files_under(small_disk)] == [SLIDE_FILE.name]
