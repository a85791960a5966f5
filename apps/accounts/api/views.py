from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import services
from apps.accounts.api.base import ProjectScopedViewSet
from apps.accounts.api.serializers import ProjectSerializer
from apps.accounts.auth import acting_user
from apps.accounts.models import Project


class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Projects the user belongs to. Creating one makes the creator its project admin."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    project_path = ""

    def create(self, request: Request) -> Response:
        serializer = ProjectSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        project = services.create_project(
            name=serializer.validated_data["name"],
            description=serializer.validated_data.get("description", ""),
            created_by=acting_user(request),
        )
        return Response(
            ProjectSerializer(project, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )
