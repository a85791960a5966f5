from django.contrib import admin

from .models import AnnotationSet, LabelClass, Task, TaskEvent


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "project", "counted", "hotkey", "colour", "retired")
    list_filter = ("project", "counted", "retired")

    def get_readonly_fields(self, request, obj=None):
        # The key is what stored labels point at: it never changes once created.
        return ("key",) if obj is not None else ()


@admin.register(AnnotationSet)
class AnnotationSetAdmin(admin.ModelAdmin):
    list_display = ("id", "slide", "stage", "source", "annotator", "created_at")
    list_filter = ("stage", "source")


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    readonly_fields = ("user", "at", "action", "note")
    can_delete = False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("slide", "stage", "annotator", "state", "assigned_at", "submitted_at")
    list_filter = ("stage", "state")
    inlines = [TaskEventInline]
