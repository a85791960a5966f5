"""Registry writes: register a model version, activate one, roll back; each one audited.

Every way in -- a card folder (``manage.py register_model``), an upload, a training job, or
the cards already installed in ``MODEL_DIR`` -- ends in :func:`register_staged`: the weights are
staged in the store and hashed, checked against the card's ``weights_sha256``, the card is
validated by :func:`ml.cards.load_card` (and, except for installed cards, the weights are
loaded into the architecture), and only then are the files published, write-once, and the row
created. A failure raises :class:`~apps.registry.errors.InvalidCard` naming the field.

Installed models: on a project's first use (its registry page or API, or a new analysis run)
each card in ``MODEL_DIR`` whose weights the project has no version of is imported as a version
(``origin=installed``, registered by nobody); the first version of a task becomes active. So a
fresh install lists the day-one models as version 1, and runs record them with their number.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from django.db import transaction

from apps.accounts import roles
from apps.accounts.models import Project
from apps.slides.storage import hash_file
from ml.cards import ModelCard, ModelCardError, discover_cards, load_card, load_model

from . import store
from .errors import InvalidCard, NotAllowed, NothingToRollBack, UploadTooLarge
from .models import AuditAction, ModelVersion, Origin, RegistryAuditEntry

#: (path, mtime_ns, size) -> sha256 of installed weights whose card does not name it.
_installed_sha: dict[tuple[str, int, int], str] = {}


def require_admin(user: Any, project: Project | int) -> None:
    if not roles.is_admin(user, project):
        raise NotAllowed("only a project admin may change its models")


# -- registering ----------------------------------------------------------------------------


def register_folder(
    *, project: Project, path: Path, user: Any, activate: bool = False
) -> list[ModelVersion]:
    """Register every card in the folder ``path`` (or the one card file ``path``)."""
    try:
        cards = [load_card(path)] if path.is_file() else list(discover_cards(path).values())
    except ModelCardError as exc:
        raise InvalidCard(exc) from exc
    if not cards:
        raise InvalidCard(ModelCardError(path, "<file>", "holds no *.json model card"))
    return [
        register_staged(
            project=project,
            raw=card.raw,
            staged=store.stage_file(card.weights),
            user=user,
            origin=Origin.FOLDER,
            activate=activate,
        )
        for card in cards
    ]


def register_upload(
    *,
    project: Project,
    card_bytes: bytes,
    weights_chunks: Iterable[bytes],
    weights_name: str,
    user: Any,
    activate: bool = False,
) -> ModelVersion:
    """Register an uploaded card and weights file; the card must name the weights' sha256."""
    require_admin(user, project)
    try:
        raw = json.loads(card_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidCard(ModelCardError("card", "<file>", f"is not JSON ({exc})")) from exc
    if not isinstance(raw, dict):
        raise InvalidCard(ModelCardError("card", "<file>", "must hold a JSON object"))
    if not isinstance(raw.get("weights_sha256"), str):
        raise InvalidCard(
            ModelCardError("card", "weights_sha256", "is missing (an upload is checked by it)")
        )
    try:
        staged = store.stage_chunks(
            weights_chunks, weights_name, max_bytes=settings.MODEL_UPLOAD_MAX_BYTES
        )
    except ValueError as exc:
        raise UploadTooLarge(str(exc)) from exc
    return register_staged(
        project=project, raw=raw, staged=staged, user=user, origin=Origin.UPLOAD, activate=activate
    )


def register_staged(
    *,
    project: Project,
    raw: dict[str, Any],
    staged: store.Staged,
    user: Any,
    origin: str,
    activate: bool = False,
    manifest: dict[str, Any] | None = None,
    check_weights: bool = True,
) -> ModelVersion:
    """Validate ``raw`` with ``staged`` weights, publish both, and create the version row."""
    try:
        card, stored = _validated(raw, staged, check_weights=check_weights)
        weights = store.publish_weights(staged)
        card_file = store.publish_card(stored, weights)
    finally:
        staged.discard()
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # serialises version numbers
        last = ModelVersion.objects.filter(project=project, task=card.task).order_by("-version")
        version = ModelVersion.objects.create(
            project=project,
            task=card.task,
            version=(last.values_list("version", flat=True).first() or 0) + 1,
            name=card.name,
            card=stored,
            card_file=str(card_file),
            weights_file=str(weights),
            weights_sha256=staged.sha256,
            weights_bytes=staged.size,
            metrics={k: v for k, v in card.metrics.items() if k != "confusion_matrix"},
            confusion_matrix=card.metrics.get("confusion_matrix"),
            manifest=manifest,
            origin=origin,
            registered_by=user if getattr(user, "is_authenticated", False) else None,
        )
        _audit(version.project, version.task, AuditAction.REGISTERED, None, version, user)
        if activate:
            _activate(version, user)
            version.refresh_from_db()
    return version


def _validated(
    raw: dict[str, Any], staged: store.Staged, *, check_weights: bool
) -> tuple[ModelCard, dict[str, Any]]:
    """The card ``raw`` validated against the staged weights, and the card to store."""
    named = raw.get("weights_sha256")
    if isinstance(named, str) and named.lower() != staged.sha256:
        raise InvalidCard(
            ModelCardError(
                "card", "weights_sha256", f"{named} does not match the weights ({staged.sha256})"
            )
        )
    stored = {**raw, "weights": staged.name, "weights_sha256": staged.sha256}
    # ml.cards validates a card file beside its weights; a scratch card points at the staged file.
    with tempfile.TemporaryDirectory(dir=store.store_root()) as scratch:
        path = Path(scratch) / "card.json"
        path.write_text(json.dumps({**stored, "weights": str(staged.path)}))
        try:
            card = load_card(path)
            if check_weights:
                load_model(card, torch.device("cpu"))
        except ModelCardError as exc:
            raise InvalidCard(exc) from exc
    return card, stored


def import_installed(project: Project) -> list[ModelVersion]:
    """Import the cards in ``MODEL_DIR`` that ``project`` has no version of (see the module).

    A broken installed card is left alone here: the analysis that would use it reports it.
    """
    try:
        cards = discover_cards(settings.MODEL_DIR)
    except ModelCardError:
        return []
    if not cards:
        return []
    with transaction.atomic():
        # Two first uses at once import once: the second waits here, then finds the versions.
        Project.objects.select_for_update().get(pk=project.pk)
        return _import(project, cards)


def _import(project: Project, cards: dict[str, ModelCard]) -> list[ModelVersion]:
    known = set(ModelVersion.objects.filter(project=project).values_list("task", "weights_sha256"))
    imported = []
    for task, card in cards.items():
        if (task, card.weights_sha256 or _sha_of(card.weights)) in known:
            continue
        has_active = ModelVersion.objects.filter(project=project, task=task, is_active=True)
        try:
            with transaction.atomic():
                version = register_staged(
                    project=project,
                    raw=card.raw,
                    staged=store.stage_file(card.weights),
                    user=None,
                    origin=Origin.INSTALLED,
                    activate=not has_active.exists(),
                    check_weights=False,  # the pipeline loads it on every run already
                )
        except InvalidCard:
            # Weights that fail their card's sha256: not a version. The run that would use
            # the card fails at once, naming the card file and the field (ml.cards).
            continue
        imported.append(version)
    return imported


def _sha_of(weights: Path) -> str:
    stat = weights.stat()
    key = (str(weights), stat.st_mtime_ns, stat.st_size)
    if key not in _installed_sha:
        _installed_sha[key] = hash_file(weights)
    return _installed_sha[key]


# -- activating and rolling back ------------------------------------------------------------


@transaction.atomic
def activate(*, version: ModelVersion, user: Any) -> ModelVersion:
    """Make ``version`` its task's active version (admins only); audited."""
    require_admin(user, version.project_id)
    _activate(version, user)
    version.refresh_from_db()
    return version


@transaction.atomic
def roll_back(*, project: Project, task: str, user: Any) -> ModelVersion:
    """Re-activate the version that was active before the current one (admins only); audited.

    The history is the audit log: each activation pushes a version, each rollback pops one, so
    repeated rollbacks walk back through the activations in order.
    """
    require_admin(user, project)
    Project.objects.select_for_update().get(pk=project.pk)
    stack = activation_stack(project, task)
    if len(stack) < 2:
        raise NothingToRollBack(f"{task} has no earlier active version to roll back to")
    current, previous = stack[-1], stack[-2]
    _set_active(project, task, previous)
    _audit(project, task, AuditAction.ROLLED_BACK, current, previous, user)
    return previous


def activation_stack(project: Project, task: str) -> list[ModelVersion]:
    """The versions made active, oldest first, with the rolled-back ones popped off."""
    entries = (
        RegistryAuditEntry.objects.filter(project=project, task=task)
        .exclude(action=AuditAction.REGISTERED)
        .select_related("to_version")
        .order_by("at", "id")
    )
    stack: list[ModelVersion] = []
    for entry in entries:
        if entry.action == AuditAction.ACTIVATED and entry.to_version is not None:
            stack.append(entry.to_version)
        elif entry.action == AuditAction.ROLLED_BACK and stack:
            stack.pop()
    return stack


def _activate(version: ModelVersion, user: Any) -> None:
    Project.objects.select_for_update().get(pk=version.project_id)
    current = ModelVersion.objects.filter(
        project_id=version.project_id, task=version.task, is_active=True
    ).first()
    if current is not None and current.pk == version.pk:
        return  # already active: nothing changes, nothing to record
    _set_active(version.project, version.task, version)
    _audit(version.project, version.task, AuditAction.ACTIVATED, current, version, user)


def _set_active(project: Project, task: str, version: ModelVersion) -> None:
    # Off first, then on: the partial unique index never sees two active versions.
    ModelVersion.objects.filter(project=project, task=task, is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)


def _audit(
    project: Project,
    task: str,
    action: str,
    before: ModelVersion | None,
    after: ModelVersion | None,
    user: Any,
) -> None:
    RegistryAuditEntry.objects.create(
        project=project,
        task=task,
        action=action,
        from_version=before,
        to_version=after,
        user=user if getattr(user, "is_authenticated", False) else None,
    )


# -- what a new analysis run uses -----------------------------------------------------------


def models_for_new_run(project: Project) -> dict[str, dict[str, Any]]:
    """Per task, the active version a new run of ``project`` uses: its card path and record.

    Tasks without an active version are absent: the run falls back to ``MODEL_DIR``'s card, or
    the stage's baseline.
    """
    import_installed(project)
    active = ModelVersion.objects.filter(project=project, is_active=True)
    return {
        v.task: {"card": str(Path(settings.MODEL_DIR) / v.card_file), **v.record()} for v in active
    }
