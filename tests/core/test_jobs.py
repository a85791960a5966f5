"""The job runner's contract, on the agreement app's job rows (apps.core.jobs has no table)."""

from __future__ import annotations

import logging

import pytest

from apps.agreement.errors import InvalidRequest
from apps.agreement.models import AgreementJob, JobKind
from apps.core import jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(slide, owner) -> AgreementJob:
    return AgreementJob.objects.create(
        slide=slide, stage="cell", kind=JobKind.REPORT, requested_by=owner
    )


def test_work_reports_progress_and_ends_done_with_its_message(queued):
    seen = []

    def work(job, progress):
        progress(1, 2, "half way")
        seen.append(AgreementJob.objects.values_list("status", "progress", "message").get())
        return "all done"

    job = jobs.run(AgreementJob, queued.pk, work)
    assert seen == [("running", 1, "half way")]
    assert (job.status, job.message, job.error) == ("done", "all done", "")
    assert job.started_at <= job.finished_at


def test_a_domain_error_is_recorded_for_the_user(queued):
    def work(job, progress):
        raise InvalidRequest("the stage was reopened")

    job = jobs.run(AgreementJob, queued.pk, work)
    assert (job.status, job.error) == ("failed", "the stage was reopened")


def test_an_unexpected_error_is_recorded_and_its_traceback_logged(queued, caplog):
    def work(job, progress):
        raise ZeroDivisionError("division by zero")

    with caplog.at_level(logging.ERROR, logger="apps.core.jobs"):
        job = jobs.run(AgreementJob, queued.pk, work)
    assert (job.status, job.error) == ("failed", "unexpected error: division by zero")
    assert caplog.records[-1].exc_info is not None


def test_a_finished_job_is_never_run_again(queued):
    assert jobs.run(AgreementJob, queued.pk, lambda job, progress: "once").status == "done"
    assert jobs.run(AgreementJob, queued.pk, lambda job, progress: "twice") is None
    assert AgreementJob.objects.get(pk=queued.pk).message == "once"
