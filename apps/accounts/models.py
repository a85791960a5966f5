"""Users, projects and memberships.

Access to everything else (slides, annotations, runs) flows from a project membership, so the
scoping rules live here once, in `Project.objects.visible_to`. What a role lets a member do
is asked of `apps.accounts.roles`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer (signing pathologist)"
    ADMIN = "admin", "Project admin"


class ProjectQuerySet(models.QuerySet["Project"]):
    def visible_to(self, user) -> ProjectQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user).distinct()


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Side of the square TOI grid in level-0 pixels (SPEC §2.2: 1,600 px by default).
    toi_tile_size = models.PositiveIntegerField(default=1600)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class MemberAction(models.TextChoices):
    ADDED = "added", "Added"
    ROLE_CHANGED = "role_changed", "Role changed"
    REMOVED = "removed", "Removed"
    USER_CREATED = "user_created", "User created"


class MembershipEvent(models.Model):
    """One change of a project's team, who made it and when: the audit log of memberships.

    Append-only; ``username`` keeps the name if the user is later deleted.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="member_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=20, choices=MemberAction.choices)
    old_role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    new_role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.username} in project {self.project_id}"


class PasswordChangeRequired(models.Model):
    """The user logs in with a one-time password and must choose their own before anything."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_change"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} must change their password"
