from rest_framework import serializers

from apps.accounts import roles
from apps.accounts.models import Membership, MembershipEvent, Project, Role


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


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.pk", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "email", "role", "created_at"]
        read_only_fields = fields


class AddMemberSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="a username or an e-mail address")
    role = serializers.ChoiceField(choices=Role.choices)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class NewUserSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{1,150}$")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices)


class NewUserResultSerializer(serializers.Serializer):
    member = MemberSerializer()
    password = serializers.CharField(help_text="the one-time password: shown this once only")


class MembershipEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True, default=None)

    class Meta:
        model = MembershipEvent
        fields = ["id", "at", "actor", "username", "action", "old_role", "new_role"]
        read_only_fields = fields


class TokenSerializer(serializers.Serializer):
    key = serializers.CharField(required=False, help_text="only in the answer that creates it")
    created = serializers.DateTimeField()
