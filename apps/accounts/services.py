"""Writes that span accounts models."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from apps.annotations.services import ensure_label_schema

from .models import Membership, Project, Role
from .roles import forget_roles


@transaction.atomic
def create_project(*, name: str, created_by: User, description: str = "") -> Project:
    """Create a project; its creator becomes its first project admin."""
    project = Project.objects.create(name=name, description=description, created_by=created_by)
    Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    forget_roles(created_by)
    ensure_label_schema(project=project)
    return project


@transaction.atomic
def add_member(*, project: Project, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    forget_roles(user)
    return membership
