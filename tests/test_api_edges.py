"""What the schema fuzzer (tests/test_schema_fuzz.py) found, pinned by fast tests: each was a
500 or an answer the schema did not describe."""

from __future__ import annotations

import pytest

from tests.annotations.conftest import add_cell, own_set

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", [0, -525, 2**31])
def test_an_edit_based_on_a_version_no_row_can_have_is_a_400_not_a_500(api, member, slide, version):
    api.force_authenticate(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 600)

    response = api.delete(f"/api/annotations/{cell['id']}/?version={version}")

    assert response.status_code == 400, response.content
    assert "version" in response.json()["detail"]


def test_options_on_an_action_without_a_serializer_describes_it_instead_of_failing(
    api, owner, project
):
    api.force_authenticate(owner)

    response = api.options(f"/api/agreement/projects/{project.pk}/reports/")

    assert response.status_code == 200, response.content
    assert response.json()["name"]


def test_an_api_path_no_route_matches_answers_the_api_json_404(api, owner):
    api.force_authenticate(owner)

    response = api.get("/api/slides/0.5/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_every_operation_documents_the_client_errors_the_api_answers():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "401", "403", "404"} <= set(operation["responses"]), (method, path)
    assert schema["components"]["schemas"]["Error"]["oneOf"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/annotation-sets/?slide=9068572390892975947776",
        "/api/analyses/?slide=9068572390892975947776",
        "/api/slides/?project=9068572390892975947776",
        "/api/annotation-sets/?slide=%D9%A3",  # an Arabic-Indic digit: isdigit(), not an id
    ],
)
def test_an_id_filter_no_row_can_match_is_a_400_not_a_500(api, owner, project, url):
    api.force_authenticate(owner)

    response = api.get(url)

    assert response.status_code == 400, response.content
