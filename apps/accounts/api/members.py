"""A project's team, managed by its admins: members, their roles, new users, the audit log.

Everything is under ``/api/projects/<id>/members/``. An outsider gets 404 for the project, a
member who is not its admin 403. The writes are the services' (``apps.accounts.services``),
which audit each change and keep the project's last admin.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import services
from apps.accounts.api import serializers as s
from apps.accounts.api.base import projects_of
from apps.accounts.api.permissions import IsProjectAdmin
from apps.accounts.auth import acting_user
from apps.accounts.models import Membership, MembershipEvent, Project


class TeamView(APIView):
    """The base: the URL's project, visible to the user (404) and administered by them (403)."""

    def project(self, request: Request, project_pk: int) -> Project:
        project = get_object_or_404(projects_of(request.user), pk=project_pk)
        if not IsProjectAdmin().has_object_permission(request, self, project):
            self.permission_denied(request, message=IsProjectAdmin.message)
        return project

    def member(self, project: Project, user_id: int) -> User:
        return get_object_or_404(User, pk=user_id, memberships__project=project)


def _members(project: Project):
    return (
        Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    )


class MemberListView(TeamView):
    @extend_schema(responses=s.MemberSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = self.project(request, project_pk)
        return Response(s.MemberSerializer(_members(project), many=True).data)

    @extend_schema(request=s.AddMemberSerializer, responses={201: s.MemberSerializer})
    def post(self, request: Request, project_pk: int) -> Response:
        project = self.project(request, project_pk)
        form = s.AddMemberSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = services.add_member_by_name(
            project=project,
            identifier=form.validated_data["user"],
            role=form.validated_data["role"],
            by=acting_user(request),
        )
        return Response(s.MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(TeamView):
    @extend_schema(request=s.RoleSerializer, responses=s.MemberSerializer)
    def patch(self, request: Request, project_pk: int, user_id: int) -> Response:
        project = self.project(request, project_pk)
        user = self.member(project, user_id)
        form = s.RoleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = services.change_role(
            project=project, user=user, role=form.validated_data["role"], by=acting_user(request)
        )
        return Response(s.MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_pk: int, user_id: int) -> Response:
        project = self.project(request, project_pk)
        user = self.member(project, user_id)
        services.remove_member(project=project, user=user, by=acting_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class NewUserView(TeamView):
    @extend_schema(request=s.NewUserSerializer, responses={201: s.NewUserResultSerializer})
    def post(self, request: Request, project_pk: int) -> Response:
        """A new user in the project, with a one-time password that this answer alone shows."""
        project = self.project(request, project_pk)
        form = s.NewUserSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user, password = services.create_user(
            project=project, by=acting_user(request), **form.validated_data
        )
        membership = Membership.objects.get(project=project, user=user)
        body = {"member": s.MemberSerializer(membership).data, "password": password}
        return Response(body, status=status.HTTP_201_CREATED)


class MemberAuditView(TeamView):
    @extend_schema(responses=s.MembershipEventSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = self.project(request, project_pk)
        events = MembershipEvent.objects.filter(project=project).select_related("actor")
        return Response(s.MembershipEventSerializer(events, many=True).data)
