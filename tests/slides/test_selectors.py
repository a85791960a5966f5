"""Slide access: one selector decides which slide a user may see, for sync and async callers."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from apps.slides.selectors import avisible_slide_or_404, visible_slide_or_404
from tests.conftest import SLIDES_DIR

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("orm_async_checks")]

# The sync selector and its async twin, called the same way from a test.
BOTH = pytest.mark.parametrize(
    "lookup",
    [visible_slide_or_404, async_to_sync(avisible_slide_or_404)],
    ids=["sync", "async"],
)


@BOTH
def test_a_member_gets_the_slide_and_its_project_in_one_query(
    lookup, member, slide, django_assert_num_queries
):
    with django_assert_num_queries(1):
        found = lookup(member, slide.pk, ready=True)
        assert found == slide and found.project.name == "Marrow study"


@BOTH
def test_an_outsider_and_an_anonymous_visitor_get_404(lookup, outsider, slide):
    for user in (outsider, AnonymousUser()):
        with pytest.raises(Http404, match="No such slide"):
            lookup(user, slide.pk)


@BOTH
def test_an_unknown_id_is_404(lookup, owner, slide):
    with pytest.raises(Http404, match="No such slide"):
        lookup(owner, slide.pk + 1000)


@BOTH
def test_ready_turns_a_failed_slide_into_a_404_that_says_why(lookup, owner, ingest_path):
    failed = ingest_path(SLIDES_DIR / "unreadable.svs")
    assert lookup(owner, failed.pk) == failed
    with pytest.raises(Http404, match="The slide is failed: the slide file is damaged"):
        lookup(owner, failed.pk, ready=True)
