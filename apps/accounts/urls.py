from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("projects/<int:project_id>/members/", views.team, name="team"),
    path("account/password/", views.PasswordChange.as_view(), name="password"),
    path("account/token/", views.api_token, name="token"),
]
