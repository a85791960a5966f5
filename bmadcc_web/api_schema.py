"""The OpenAPI schema's one description of error answers (REST_FRAMEWORK ``DEFAULT_SCHEMA_CLASS``).

Every operation can answer the client errors that :mod:`bmadcc_web.exception_handler` and DRF
produce (bad input, not logged in, not allowed, not found or not yours, a state conflict, a
body too large or of the wrong type). Declaring them here, once, keeps the schema honest for
clients and for the schema fuzzer without repeating them on every view; a view that documents
its own body for one of these codes keeps it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

#: The client errors any operation may answer (the STATUS table's codes, and DRF's own).
ERROR_CODES = (400, 401, 403, 404, 405, 406, 409, 413, 415, 422)

#: ``{"detail": message, ...data}`` for domain errors and DRF's own; a field-validation error
#: is ``{field: [messages]}`` and a bare validation error a list of messages.
ERROR_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "additionalProperties": True,
        },
        {"type": "array", "items": {}},
    ]
}


class ErrorDocumentingAutoSchema(AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        component = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        responses = operation.setdefault("responses", {})
        for code in ERROR_CODES:
            responses.setdefault(
                str(code),
                {
                    "description": HTTPStatus(code).phrase,
                    "content": {"application/json": {"schema": component.ref}},
                },
            )
        return operation
