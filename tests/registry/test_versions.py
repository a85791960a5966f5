"""Model versions: register (folder, upload, installed), activate, roll back, each audited;
bad cards and weights refused with the field named; members read, admins change, outsiders 404."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from apps.registry import versions
from apps.registry.models import ModelVersion, RegistryAuditEntry
from ml.cards import load_card
from tests.registry.conftest import classifier_card

pytestmark = pytest.mark.django_db


def _register(folder: Path, project, *extra: str) -> str:
    out = io.StringIO()
    call_command("register_model", str(folder), "--project", str(project.pk), *extra, stdout=out)
    return out.getvalue()


def _edit(card: Path, **changes) -> Path:
    raw = json.loads(card.read_text())
    raw.update(changes)
    card.write_text(json.dumps(raw))
    return card


def test_register_model_copies_the_weights_into_the_store_as_version_one(
    project, tmp_path, registry_dirs
) -> None:
    card = classifier_card(tmp_path / "a")
    out = _register(card.parent, project, "--activate")
    assert out.strip() == "registered tiny-classifier as cell_classification v1 (active)"
    (v1,) = ModelVersion.objects.filter(project=project)
    assert (v1.version, v1.is_active, v1.origin) == (1, True, "folder")
    assert v1.confusion_matrix == [[3, 1], [2, 4]] and v1.metrics == {"accuracy": 0.5}
    # The stored copy is independent of the folder it came from.
    shutil.rmtree(card.parent)
    stored = load_card(registry_dirs / v1.card_file)
    assert stored.weights == (registry_dirs / v1.weights_file).resolve()
    assert stored.weights_sha256 == v1.weights_sha256 and v1.weights_sha256 in v1.weights_file
    actions = list(RegistryAuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["registered", "activated"]


def test_a_second_registration_is_version_two_and_leaves_version_ones_file_untouched(
    project, tmp_path, registry_dirs
) -> None:
    _register(classifier_card(tmp_path / "a", seed=0).parent, project, "--activate")
    v1 = ModelVersion.objects.get()
    before = (registry_dirs / v1.weights_file).read_bytes()
    # Same card name and weights file name, different weights: a new address, no overwrite.
    _register(classifier_card(tmp_path / "b", seed=1).parent, project)
    v2 = ModelVersion.objects.get(version=2)
    assert v2.weights_sha256 != v1.weights_sha256 and not v2.is_active
    assert (registry_dirs / v1.weights_file).read_bytes() == before
    assert (registry_dirs / v2.weights_file).is_file()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"input_size": -1}, "input_size"), ({"architecture": "nope"}, "architecture")],
)
def test_a_broken_card_is_refused_with_the_field_named(project, tmp_path, change, field) -> None:
    card = _edit(classifier_card(tmp_path / "a"), **change)
    with pytest.raises(CommandError, match=f"field '{field}'"):
        _register(card.parent, project)
    assert not ModelVersion.objects.exists()


def test_weights_whose_sha256_differs_from_the_card_are_refused(project, tmp_path) -> None:
    card = _edit(classifier_card(tmp_path / "a"), weights_sha256="0" * 64)
    with pytest.raises(CommandError, match="field 'weights_sha256'"):
        _register(card.parent, project)
    assert not ModelVersion.objects.exists()


def test_weights_that_do_not_fit_the_architecture_are_refused(project, tmp_path) -> None:
    card = classifier_card(tmp_path / "a")
    raw = json.loads(card.read_text())
    raw.pop("weights_sha256")
    (card.parent / raw["weights"]).write_bytes(b"not a torch file")
    card.write_text(json.dumps(raw))
    with pytest.raises(CommandError, match="field 'weights'"):
        _register(card.parent, project)


def test_rolling_back_returns_to_each_previously_active_version_in_turn(
    project, owner, tmp_path
) -> None:
    for seed in range(3):
        _register(classifier_card(tmp_path / str(seed), seed=seed).parent, project)
    v1, v2, v3 = ModelVersion.objects.order_by("version")
    for v in (v1, v2, v3):
        versions.activate(version=v, user=owner)
    task = "cell_classification"
    assert versions.roll_back(project=project, task=task, user=owner) == v2
    assert versions.roll_back(project=project, task=task, user=owner) == v1
    assert ModelVersion.objects.get(is_active=True) == v1
    last = RegistryAuditEntry.objects.first()
    assert (last.action, last.from_version, last.to_version, last.user) == (
        "rolled_back",
        v2,
        v1,
        owner,
    )
    from apps.registry.errors import NothingToRollBack

    with pytest.raises(NothingToRollBack):
        versions.roll_back(project=project, task=task, user=owner)


def test_the_database_refuses_two_active_versions_of_one_task(project, tmp_path) -> None:
    for seed in range(2):
        _register(classifier_card(tmp_path / str(seed), seed=seed).parent, project)
    ModelVersion.objects.filter(version=1).update(is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(version=2).update(is_active=True)


def test_installed_cards_are_listed_as_active_version_one_on_first_use(
    api, project, member, registry_dirs
) -> None:
    classifier_card(registry_dirs, name="installed-classifier")
    api.force_authenticate(member)
    listed = api.get(f"/api/models/?project={project.pk}").json()
    assert [(v["task"], v["version"], v["name"], v["is_active"], v["origin"]) for v in listed] == [
        ("cell_classification", 1, "installed-classifier", True, "installed")
    ]
    # Asking again imports nothing more.
    assert len(api.get(f"/api/models/?project={project.pk}").json()) == 1


def test_an_installed_card_whose_weights_fail_their_sha256_is_not_made_a_version(
    api, project, member, registry_dirs
) -> None:
    card = classifier_card(registry_dirs, name="tampered-classifier")
    card.write_text(json.dumps({**json.loads(card.read_text()), "weights_sha256": "0" * 64}))
    api.force_authenticate(member)
    assert api.get(f"/api/models/?project={project.pk}").json() == []
    assert not ModelVersion.objects.exists()


def test_a_member_reads_a_version_but_only_an_admin_activates_it(
    api, project, owner, member, tmp_path
) -> None:
    _register(classifier_card(tmp_path / "a").parent, project)
    version = ModelVersion.objects.get()
    api.force_authenticate(member)
    detail = api.get(f"/api/models/{version.pk}/").json()
    assert detail["card"]["classes"] == ["lymphocyte", "myeloblast"]
    assert detail["confusion_matrix"] == [[3, 1], [2, 4]]
    svg = api.get(detail["confusion_matrix_svg"])
    assert svg["Content-Type"] == "image/svg+xml" and b"myeloblast" in svg.content
    assert [e["action"] for e in detail["audit"]] == ["registered"]
    refused = api.post(f"/api/models/{version.pk}/activate/")
    assert refused.status_code == 403, refused.content
    assert (
        api.post("/api/models/rollback/", {"project": project.pk, "task": "roi"}).status_code == 403
    )
    api.force_authenticate(owner)
    assert api.post(f"/api/models/{version.pk}/activate/").json()["is_active"] is True
    nothing = api.post(
        "/api/models/rollback/", {"project": project.pk, "task": "cell_classification"}
    )
    assert nothing.status_code == 409


def test_outsiders_get_404_on_versions_and_on_the_project_list(
    api, project, outsider, tmp_path
) -> None:
    _register(classifier_card(tmp_path / "a").parent, project)
    version = ModelVersion.objects.get()
    api.force_authenticate(outsider)
    for url in (f"/api/models/{version.pk}/", f"/api/models/{version.pk}/confusion.svg/"):
        assert api.get(url).status_code == 404
    assert api.post(f"/api/models/{version.pk}/activate/").status_code == 404
    assert api.get(f"/api/models/?project={project.pk}").status_code == 404
    rollback = {"project": project.pk, "task": "cell_classification"}
    assert api.post("/api/models/rollback/", rollback).status_code == 404
    assert ModelVersion.objects.get().is_active is False


def _upload(api, project, card: Path, weights: Path, **extra):
    with card.open("rb") as c, weights.open("rb") as w:
        body = {"project": project.pk, "card": c, "weights": w, **extra}
        return api.post("/api/models/upload/", body, format="multipart")


def test_an_admin_uploads_a_card_and_weights_as_a_new_version(
    api, project, owner, tmp_path, registry_dirs
) -> None:
    card = classifier_card(tmp_path / "a")
    api.force_authenticate(owner)
    response = _upload(api, project, card, card.with_suffix(".pt"), activate="true")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["is_active"], body["origin"]) == (1, True, "upload")
    assert body["weights_sha256"] == json.loads(card.read_text())["weights_sha256"]
    assert (registry_dirs / ModelVersion.objects.get().weights_file).is_file()


def test_an_upload_whose_weights_differ_from_the_cards_sha256_is_400_naming_it(
    api, project, owner, tmp_path
) -> None:
    card = classifier_card(tmp_path / "a")
    other = classifier_card(tmp_path / "b", seed=1)
    api.force_authenticate(owner)
    response = _upload(api, project, card, other.with_suffix(".pt"))
    assert response.status_code == 400
    assert response.json()["field"] == "weights_sha256"
    broken = _edit(classifier_card(tmp_path / "c"), normalisation={"mean": [0, 0]})
    response = _upload(api, project, broken, broken.with_suffix(".pt"))
    assert response.status_code == 400 and response.json()["field"] == "normalisation.mean"
    assert not ModelVersion.objects.exists()


def test_an_upload_over_the_size_limit_is_413_and_keeps_nothing(
    api, project, owner, tmp_path, settings, registry_dirs
) -> None:
    card = classifier_card(tmp_path / "a")
    settings.MODEL_UPLOAD_MAX_BYTES = 1000  # the weights are ~100 kB
    api.force_authenticate(owner)
    response = _upload(api, project, card, card.with_suffix(".pt"))
    assert response.status_code == 413, response.content
    assert not ModelVersion.objects.exists()
    assert not [p for p in registry_dirs.rglob("*") if p.is_file()]


def test_a_non_admin_member_cannot_upload(api, project, member, tmp_path) -> None:
    card = classifier_card(tmp_path / "a")
    api.force_authenticate(member)
    assert _upload(api, project, card, card.with_suffix(".pt")).status_code == 403


def test_the_page_lists_versions_and_offers_admins_the_buttons(
    client, project, owner, member, outsider, tmp_path
) -> None:
    _register(classifier_card(tmp_path / "a").parent, project)
    _register(classifier_card(tmp_path / "b", seed=1).parent, project, "--activate")
    url = f"/projects/{project.pk}/models/"
    client.force_login(member)
    page = client.get(url).content.decode()
    assert 'data-version="2" class="active"' in page and "Activate</button>" not in page
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert page.count("Activate</button>") == 1 and "Roll back" in page
    v1 = ModelVersion.objects.get(version=1)
    client.post(f"/projects/{project.pk}/models/{v1.pk}/activate/")
    assert ModelVersion.objects.get(is_active=True) == v1
    client.post(f"/projects/{project.pk}/models/rollback/", {"task": "cell_classification"})
    assert ModelVersion.objects.get(is_active=True).version == 2
    client.force_login(outsider)
    assert client.get(url).status_code == 404
