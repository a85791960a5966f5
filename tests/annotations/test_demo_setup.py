"""The demo setup gives the demo smear two blinded annotators with every stage assigned, and
still starts, with an empty demo project, when there is no shared data."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.models import Project, Role
from apps.accounts.roles import role_of
from apps.annotations.models import LabelClass, Task

pytestmark = pytest.mark.django_db


@pytest.mark.slow
def test_setup_demo_assigns_both_annotators_every_stage_idempotently(
    settings, slide_store, django_user_model, tmp_path
):
    # The demo smear (24,000 px square) is built here from the smear photos: a few seconds.
    settings.VAR_DIR = tmp_path
    settings.DEMO_PASSWORD = "demo-pass-for-tests"
    call_command("setup_demo")
    call_command("setup_demo")
    project = Project.objects.get(name="Demo marrow project")
    demo = django_user_model.objects.get(username="demo")
    assert role_of(demo, project) == Role.ADMIN
    for username in ("annotator_a", "annotator_b"):
        user = django_user_model.objects.get(username=username)
        assert user.check_password("demo-pass-for-tests")
        assert role_of(user, project) == Role.ANNOTATOR
        tasks = Task.objects.filter(annotator=user, slide__name="demo marrow smear")
        assert sorted(tasks.values_list("stage", flat=True)) == ["cell", "roi", "toi"]
    assert LabelClass.objects.filter(project=project).count() == 22
    # One analysis of the demo smear is queued, however often the setup runs.
    from apps.analysis.models import AnalysisRun

    runs = AnalysisRun.objects.filter(slide__project=project)
    assert [(r.slide.name, r.status) for r in runs] == [("demo marrow smear", "queued")]


def test_setup_demo_without_shared_data_gives_an_empty_project_and_says_why(
    settings, slide_store, django_user_model, tmp_path
):
    # A clean clone has no ../shared beside it: the app must still start, with the demo account.
    settings.VAR_DIR = tmp_path / "var"
    settings.SHARED_DATA_DIR = tmp_path / "no-shared-data"
    settings.DEMO_PASSWORD = "demo-pass-for-tests"
    out, err = StringIO(), StringIO()
    call_command("setup_demo", stdout=out, stderr=err)
    project = Project.objects.get(name="Demo marrow project")
    demo = django_user_model.objects.get(username="demo")
    assert role_of(demo, project) == Role.ADMIN
    assert not project.slides.exists()
    assert LabelClass.objects.filter(project=project).count() == 22
    lines = out.getvalue().splitlines()
    (notice,) = [line for line in lines if "No sample data" in line]
    assert str(settings.SHARED_DATA_DIR) in notice and "BMADCC_SHARED_DATA" in notice
    assert "upload" in notice
    assert "Log in as demo / demo-pass-for-tests" in out.getvalue()
    assert err.getvalue() == ""
