"""Shared test fixtures: real files from ../shared/data, a real database, real users.

The base cast follows healthchecks' hc/test.py: an owner (project admin), a member (annotator)
and an outsider who belongs to another project.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ml.data import SHARED_DATA, SLIDES_DIR  # tests import both from here too

REPO = Path(__file__).resolve().parents[1]
#: The real Aperio slide most annotation and agreement tests draw on (2220 x 2967 px).
SLIDE_FILE = SLIDES_DIR / "cmu-1-small-region.svs"
TEST_CACHE = REPO / "var" / "test-cache"
ARTIFACTS = REPO / "artifacts"


@pytest.fixture
def slide_store(settings, tmp_path):
    """Slides are stored under this test's temporary folder, with a fresh tile cache; files
    there may be registered in place too."""
    from django.core.cache import cache

    from apps.slides import deepzoom

    settings.SLIDE_STORAGE_DIR = tmp_path / "slide-store"
    settings.SLIDE_STORAGE_DIR.mkdir()
    settings.SLIDE_IMPORT_ROOTS = [*settings.SLIDE_IMPORT_ROOTS, tmp_path.resolve()]
    cache.clear()
    deepzoom.tiles.clear()
    return settings.SLIDE_STORAGE_DIR


@pytest.fixture(scope="session")
def demo_slide_file() -> Path:
    """The demo marrow smear (>= 20,000 px square, 0.1 µm/px), built once and cached."""
    from apps.slides.demo import ensure_demo_slide

    return ensure_demo_slide(SHARED_DATA, TEST_CACHE, size=20_000)


@pytest.fixture(autouse=True)
def fast_passwords(request):
    """Users are created in most tests; PBKDF2's deliberate slowness buys nothing there."""
    # tests/ml may run with -p no:django; they create no users.
    if request.config.pluginmanager.hasplugin("django"):
        request.getfixturevalue("settings").PASSWORD_HASHERS = [
            "django.contrib.auth.hashers.MD5PasswordHasher"
        ]


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password="owner-pass-123")


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("member", password="member-pass-123")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("outsider", password="outsider-pass-123")


@pytest.fixture
def project(owner, member, outsider, slide_store):
    from apps.accounts.models import Role
    from apps.accounts.services import add_member, create_project

    project = create_project(name="Marrow study", created_by=owner)
    add_member(project=project, user=member, role=Role.ANNOTATOR)
    create_project(name="Someone else's study", created_by=outsider)
    return project


@pytest.fixture
def partner(django_user_model, project):
    """Annotator B of ``project`` (``member`` is annotator A)."""
    from apps.accounts.models import Role
    from apps.accounts.services import add_member

    user = django_user_model.objects.create_user("partner", password="partner-pass-123")
    add_member(project=project, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def reviewer(django_user_model, project):
    """The signing pathologist of ``project``: sees every annotator's work."""
    from apps.accounts.models import Role
    from apps.accounts.services import add_member

    user = django_user_model.objects.create_user("reviewer", password="reviewer-pass-123")
    add_member(project=project, user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def slide(ingest_path):
    """The real cmu-1-small-region.svs, ingested and ready."""
    slide = ingest_path(SLIDE_FILE)
    assert slide.status == "ready", slide.error
    return slide


@pytest.fixture
def ingest_path(project, owner):
    """Register a file in ``project`` and ingest it now, as the worker would."""
    from apps.slides import services

    def _ingest(path: Path, **kwargs):
        intake = services.register_path(project=project, path=path, user=owner, **kwargs)
        services.ingest(intake.slide.pk)
        intake.slide.refresh_from_db()
        return intake.slide

    return _ingest


@pytest.fixture
def api(client):
    """A DRF test client."""
    from rest_framework.test import APIClient

    return APIClient()
