"""``OPTIONS`` answers (REST_FRAMEWORK ``DEFAULT_METADATA_CLASS``).

DRF's ``SimpleMetadata`` describes a view's POST/PUT body by instantiating its serializer. Many
of our actions take a small body parsed by hand, with no ``serializer_class``; there DRF's
``get_serializer`` asserts and ``OPTIONS`` answered 500 (found by the schema fuzzer). Such a
view has no body to describe, so its ``OPTIONS`` names it and its methods and stops there.
"""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata


class Metadata(SimpleMetadata):
    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        if not has_serializer(view):
            return {}
        return super().determine_actions(request, view)


def has_serializer(view: Any) -> bool:
    """Whether ``view`` names a serializer, by attribute or by its own ``get_serializer_class``."""
    # Imported here: DRF loads the metadata class while rest_framework.generics is importing.
    from rest_framework.generics import GenericAPIView

    if getattr(view, "serializer_class", None) is not None:
        return True
    own = getattr(type(view), "get_serializer_class", None)
    return own is not None and own is not GenericAPIView.get_serializer_class
