from rest_framework import serializers

from apps.accounts import roles
from apps.accounts.models import Membership, Project


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role"]


class ProjectSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "toi_tile_size", "created_at", "my_role"]
        read_only_fields = ["id", "created_at", "my_role"]

    def get_my_role(self, project: Project) -> str | None:
        request = self.context.get("request")
        return roles.role_of(request.user, project) if request else None
