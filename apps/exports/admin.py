from django.contrib import admin

from .models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "requested_by", "status", "progress_done", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in ExportJob._meta.fields]
