from django.contrib import admin

from .models import Slide


@admin.register(Slide)
class SlideAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "status", "vendor", "width", "height", "mpp_x")
    list_filter = ("status", "project")
    search_fields = ("name", "sha256")
