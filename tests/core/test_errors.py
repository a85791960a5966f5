"""The one error scheme: every domain error is an AppError, answered by the one handler."""

from __future__ import annotations

import inspect

import pytest
from rest_framework import status

from apps.agreement import errors as agreement
from apps.annotations import errors as annotations
from apps.core.errors import AppError
from apps.slides import errors as slides
from bmadcc_web.exception_handler import STATUS, exception_handler, status_of


def domain_errors() -> list[type[AppError]]:
    return [
        cls
        for module in (annotations, agreement, slides)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
    ]


def test_every_domain_error_is_an_app_error_with_its_own_status():
    for cls in domain_errors():
        assert issubclass(cls, AppError), cls
        assert cls in STATUS, f"{cls.__name__} has no status in the exception handler's table"


def test_only_an_oversized_upload_answers_413():
    assert status_of(slides.UploadTooLarge("too big")) == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    assert status_of(slides.SlideError("unreadable")) == status.HTTP_422_UNPROCESSABLE_ENTITY
    assert status_of(slides.NotAFile("/nope is not a file")) == status.HTTP_400_BAD_REQUEST


def test_a_subclass_without_its_own_entry_answers_as_its_base():
    class Unlisted(agreement.NotReady):
        pass

    assert status_of(Unlisted("blinded", "wait")) == status.HTTP_409_CONFLICT


def test_the_body_is_the_message_and_the_data():
    response = exception_handler(
        agreement.NotReady("blinded", "blinded: 1 of 2", tasks=2, submitted=1), {}
    )
    assert response.status_code == 409
    assert response.data == {
        "detail": "blinded: 1 of 2",
        "status": "blinded",
        "tasks": 2,
        "submitted": 1,
    }


@pytest.mark.django_db
def test_a_stale_version_carries_the_stored_annotation(slide, member):
    from apps.annotations import services

    aset = services.get_or_create_annotator_set(slide=slide, stage="roi", user=member)
    geometry = {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 9], [0, 0]]]}
    [pk] = services.bulk_create_annotations(aset=aset, user=member, items=[{"geometry": geometry}])
    with pytest.raises(annotations.StaleVersion) as caught:
        services.update_annotation(annotation_id=pk, user=member, version=7, changes={"label": ""})
    response = exception_handler(caught.value, {})
    assert response.status_code == 409
    assert response.data["current"]["id"] == pk and response.data["current"]["version"] == 1


def test_other_exceptions_go_to_drf():
    from rest_framework.exceptions import NotFound

    assert exception_handler(NotFound("no such slide"), {}).status_code == 404
    assert exception_handler(ValueError("a bug"), {}) is None  # Django answers 500, logs it
