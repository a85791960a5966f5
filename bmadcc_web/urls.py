from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response


@extend_schema(exclude=True)  # not an operation: what every unknown /api/ path answers
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def api_not_found(request: Request) -> Response:
    """An API path no route matches (``/api/slides/0.5/``) answers the API's JSON 404, not
    Django's HTML page: clients parse every API answer the same way."""
    raise NotFound()


api_patterns = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.slides.api.urls")),
    path("", include("apps.annotations.api.urls")),
    path("", include("apps.agreement.api.urls")),
    path("", include("apps.analysis.api.urls")),
    path("", include("apps.exports.api.urls")),
    path("", include("apps.reports.api.urls")),
    path("", include("apps.registry.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include(api_patterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's settings as a script file: no inline script, so the
    # docs work under the Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/", api_not_found, name="api-not-found"),
    path("", include("apps.accounts.urls")),
    path("", include("apps.slides.urls")),
    path("", include("apps.annotations.urls")),
    path("", include("apps.agreement.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.registry.urls")),
]
