"""Pages of team administration and of the user's own account.

The team page is the project admin's (404 to outsiders, 403 to other members); its forms post
back to it and call the same services as the API (``apps.accounts.services``). A one-time
password appears in the answer to the request that created it, never in a redirect, a message
or a log.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from apps.core.errors import AppError

from . import roles, services
from .auth import acting_user
from .middleware import MUST_CHANGE_PASSWORD
from .models import Membership, MembershipEvent, Project, Role


def _administered(request: HttpRequest, project_id: int) -> Project:
    project = get_object_or_404(Project.objects.visible_to(request.user), pk=project_id)
    if not roles.is_admin(request.user, project):
        raise PermissionDenied("Only a project admin may manage the team.")
    return project


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def team(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _administered(request, project_id)
    new_password = None
    if request.method == "POST":
        try:
            new_password = _change(request, project)
        except AppError as exc:
            messages.error(request, exc.message)
        if new_password is None:
            return redirect("accounts:team", project_id=project.pk)
    context = {
        "project": project,
        "members": Membership.objects.filter(project=project)
        .select_related("user")
        .order_by("user__username"),
        "events": MembershipEvent.objects.filter(project=project).select_related("actor")[:200],
        "roles": Role.choices,
        "new_password": new_password,
    }
    return render(request, "accounts/team.html", context)


def _change(request: HttpRequest, project: Project) -> tuple[str, str] | None:
    """Apply one posted change; ``(username, one-time password)`` for a created user."""
    by, post = acting_user(request), request.POST
    action, role = post.get("action"), post.get("role", "")
    if role and role not in Role.values:
        raise AppError(f"unknown role {role!r}")
    if action == "add":
        membership = services.add_member_by_name(
            project=project, identifier=post.get("user", ""), role=role, by=by
        )
        messages.success(request, f"{membership.user.username} added as {role}.")
    elif action == "role":
        user = _member(project, post.get("user_id"))
        services.change_role(project=project, user=user, role=role, by=by)
        messages.success(request, f"{user.username} is now {role}.")
    elif action == "remove":
        user = _member(project, post.get("user_id"))
        services.remove_member(project=project, user=user, by=by)
        messages.success(request, f"{user.username} removed.")
    elif action == "create":
        user, password = services.create_user(
            project=project,
            username=post.get("username", ""),
            email=post.get("email", ""),
            role=role,
            by=by,
        )
        return user.username, password
    else:
        raise AppError(f"unknown action {action!r}")
    return None


def _member(project: Project, user_id: str | None) -> User:
    if not (user_id or "").isdigit():
        raise AppError("choose a member")
    return get_object_or_404(User, pk=int(user_id or 0), memberships__project=project)


class PasswordChange(PasswordChangeView):
    """Choosing one's own password; it also spends a one-time password."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("slides:list")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed(user=form.user)
        self.request.session.pop(MUST_CHANGE_PASSWORD, None)
        update_session_auth_hash(self.request, form.user)
        messages.success(self.request, "Your password is changed.")
        return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def api_token(request: HttpRequest) -> HttpResponse:
    """The user's API token: make a new one (shown once) or revoke it."""
    from rest_framework.authtoken.models import Token

    user = acting_user(request)
    key = None
    if request.method == "POST":
        Token.objects.filter(user=user).delete()
        if request.POST.get("action") == "create":
            key = Token.objects.create(user=user).key
        else:
            messages.success(request, "Your API token is revoked.")
            return redirect("accounts:token")
    token = Token.objects.filter(user=user).first()
    return render(request, "accounts/token.html", {"token": token, "key": key})
