"""The annotation API's one scoping-and-blinding base.

``BlindedViewSet`` extends the project scoping of ``ProjectScopedViewSet`` with the blinding
rule of :func:`apps.annotations.selectors.visible_sets`: every viewset over annotation data
names the path from its model to ``AnnotationSet`` and inherits it, so an object the user may
not see is absent (404) from lists, details, counts, history and crops alike.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.db.models import QuerySet
from rest_framework.negotiation import DefaultContentNegotiation

from apps.accounts.api.base import ProjectScopedViewSet
from apps.annotations import selectors


class BlindedViewSet(ProjectScopedViewSet):
    #: Lookup path from the model to AnnotationSet ("" when the model is AnnotationSet).
    set_path: str = "set"

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        visible = selectors.visible_sets(self.request.user).values("pk")
        if not self.set_path:
            return queryset.filter(pk__in=visible)
        return queryset.filter(**{f"{self.set_path}__in": visible})


class IgnoreFormatParam(DefaultContentNegotiation):
    """Content negotiation that leaves ``?format=`` to the view (export picks a file format)."""

    # Only URL_FORMAT_OVERRIDE is read here; the stubs type the whole api_settings object.
    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)  # type: ignore[assignment]
