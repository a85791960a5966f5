from django.urls import path
from rest_framework.routers import SimpleRouter

from .members import MemberAuditView, MemberDetailView, MemberListView, NewUserView
from .token import MyTokenView
from .views import ProjectViewSet

router = SimpleRouter()
router.register("projects", ProjectViewSet, basename="project")

members = "projects/<int:project_pk>/members/"
urlpatterns = [
    *router.urls,
    path(members, MemberListView.as_view(), name="member-list"),
    path(f"{members}new-user/", NewUserView.as_view(), name="member-new-user"),
    path(f"{members}audit/", MemberAuditView.as_view(), name="member-audit"),
    path(f"{members}<int:user_id>/", MemberDetailView.as_view(), name="member-detail"),
    path("me/token/", MyTokenView.as_view(), name="my-token"),
]
