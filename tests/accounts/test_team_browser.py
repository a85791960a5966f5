"""A project admin manages the team on its page, in a real browser; the new user logs in once."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.accounts.models import Membership, MembershipEvent
from tests.browser import *  # noqa: F403
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def urlconf_loaded():
    """Import the URLconf (and the ML code behind it) before the first page, not during it."""
    reverse("login")


def test_an_admin_adds_re_roles_removes_and_creates_members_on_the_team_page(
    new_page, live_server, project, owner, member, django_user_model
):
    django_user_model.objects.create_user("dana", email="dana@lab.example", password="x")
    page = new_page()
    page.set_default_timeout(90_000)  # a loaded CI machine; each step is one page load
    login(page, live_server, "owner", "owner-pass-123")
    page.click("text=Team")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/members/")

    page.fill(".add-member input[name=user]", "dana@lab.example")
    page.select_option(".add-member select[name=role]", "reviewer")
    page.click(".add-member button")
    page.wait_for_selector("tr.member[data-username=dana]")
    assert Membership.objects.get(project=project, user__username="dana").role == "reviewer"

    page.select_option("tr.member[data-username=member] select[name=role]", "admin")
    page.click("tr.member[data-username=member] .role button")
    page.wait_for_selector(".messages >> text=member is now admin")
    page.click("tr.member[data-username=dana] .remove button")
    page.wait_for_selector("tr.member[data-username=dana]", state="detached")

    page.fill(".create-user input[name=username]", "erin")
    page.click(".create-user button")
    password = page.inner_text(".one-time-password code.password")
    assert re.fullmatch(r"[\w-]{16}", password)
    # The audit log lists every change, newest first, with who made it.
    actions = page.eval_on_selector_all("tr.event", "rows => rows.map(r => r.dataset.action)")
    assert actions[:5] == ["added", "user_created", "removed", "role_changed", "added"]
    assert MembershipEvent.objects.filter(project=project, actor=owner).count() >= 5

    # The new user logs in once with it and must choose their own password first.
    erin = new_page()
    erin.set_default_timeout(90_000)
    erin.goto(f"{live_server.url}/login/")
    erin.fill("input[name=username]", "erin")
    erin.fill("input[name=password]", password)
    erin.click("button[type=submit]")
    erin.wait_for_url(f"{live_server.url}/account/password/")
    erin.fill("input[name=old_password]", password)
    erin.fill("input[name=new_password1]", "Marrow-smear-count-93")
    erin.fill("input[name=new_password2]", "Marrow-smear-count-93")
    erin.click("main button[type=submit]")  # not the header's "Log out"
    erin.wait_for_url(f"{live_server.url}/")
    assert "Marrow study" in erin.inner_text("main")


def test_the_last_admin_is_told_they_cannot_leave(new_page, live_server, project, owner):
    page = new_page()
    login(page, live_server, "owner", "owner-pass-123")
    page.goto(f"{live_server.url}/projects/{project.pk}/members/")
    page.click("tr.member[data-username=owner] .remove button")
    page.wait_for_selector(".messages >> text=last admin")
    assert Membership.objects.filter(project=project, user=owner, role="admin").exists()
