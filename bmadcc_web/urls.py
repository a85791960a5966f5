from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

api_patterns = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.slides.api.urls")),
    path("", include("apps.annotations.api.urls")),
    path("", include("apps.agreement.api.urls")),
    path("", include("apps.analysis.api.urls")),
    path("", include("apps.exports.api.urls")),
    path("", include("apps.reports.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include(api_patterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("apps.accounts.urls")),
    path("", include("apps.slides.urls")),
    path("", include("apps.annotations.urls")),
    path("", include("apps.agreement.urls")),
    path("", include("apps.reports.urls")),
]
