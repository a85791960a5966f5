"""Writes of reports: create version 1, review (confirm / reclassify), sign, amend.

Every write of a version's content starts with :func:`check_unsigned` (the one "is signed"
guard of the services; the database holds the same rule, migration 0002). Reclassification is
an edit of the version's review set through :func:`apps.annotations.services.update_annotation`,
so it has a version, history and author, and a stale version is refused (409) exactly as in the
workspace. Each write appends to the report's audit log in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.roles import is_reviewer_or_admin
from apps.analysis.models import AnalysisRun, RunStatus
from apps.annotations.fast_insert import ROW_FIELDS, insert_new
from apps.annotations.models import AnnotationSet, SetSource, Stage
from apps.annotations.selectors import active_label_keys
from apps.annotations.services import update_annotation

from .document import class_keys_of, content_sha256, report_document
from .errors import (
    InvalidInput,
    NotSignedYet,
    NotSigner,
    ReportSigned,
    ReviewIncomplete,
    RunNotDone,
    SignatureLocked,
    WrongPassword,
)
from .models import (
    SIGNATURE_MEANING,
    AuditAction,
    AuditEntry,
    MarkAction,
    Report,
    ReportVersion,
    ReviewMark,
)


def check_unsigned(version: ReportVersion) -> None:
    """Raise :class:`ReportSigned` (409) for a signed version: the one guard of the services."""
    if version.is_signed:
        raise ReportSigned(
            f"version {version.number} of this report is signed and never changes; "
            "start an amendment instead",
            version=version.number,
        )


def check_signer(user: User, run: AnalysisRun) -> None:
    """Only a reviewer or admin of the run's project reviews, signs and amends (403)."""
    if not is_reviewer_or_admin(user, run.slide.project_id):
        raise NotSigner("only the project's reviewers and admins review and sign reports")


def audit(*, version: ReportVersion, user: User, action: str, **detail: Any) -> AuditEntry:
    return AuditEntry.objects.create(
        report_id=version.report_id,
        version_number=version.number,
        user=user,
        username=user.get_username(),
        action=action,
        detail=detail,
    )


@transaction.atomic
def ensure_report(*, run: AnalysisRun, user: User) -> Report:
    """The run's report, made with version 1 (a copy of the run's cells) on first use."""
    existing = Report.objects.filter(run=run).first()
    if existing is not None:
        return existing
    if run.status != RunStatus.DONE or run.cell_set is None:
        raise RunNotDone(f"run {run.pk} is {run.status}; only a finished run has a report")
    try:
        with transaction.atomic():
            report = Report.objects.create(run=run)
    except IntegrityError:  # made meanwhile by another request
        return Report.objects.get(run=run)
    version = _new_version(report, number=1, source=run.cell_set, user=user, reason="")
    audit(version=version, user=user, action=AuditAction.CREATED, cells=_cell_count(version))
    return report


def _cell_count(version: ReportVersion) -> int:
    return version.review_set.annotations.filter(is_deleted=False).count()


def _new_version(
    report: Report,
    *,
    number: int,
    source: AnnotationSet,
    user: User,
    reason: str,
    supersedes: ReportVersion | None = None,
) -> ReportVersion:
    """A version whose review set is a copy of ``source``'s live cells (classes, probabilities
    and review flags), so the run's own set is never edited."""
    review_set = AnnotationSet.objects.create(
        slide_id=source.slide_id,
        stage=Stage.CELL,
        source=SetSource.REPORT_REVIEW,
        note=f"review of analysis run {report.run_id}, report version {number}",
    )
    rows = list(
        source.annotations.filter(is_deleted=False).order_by("id").values("id", *ROW_FIELDS)
    )
    new_ids = insert_new([{k: r[k] for k in ROW_FIELDS} for r in rows], aset=review_set, user=user)
    version = ReportVersion.objects.create(
        report=report,
        number=number,
        supersedes=supersedes,
        reason=reason,
        review_set=review_set,
        created_by=user,
    )
    if supersedes is not None:
        # Cells looked at in the signed version stay looked at: the amendment reviews its change.
        copied = dict(zip((r["id"] for r in rows), new_ids, strict=True))
        ReviewMark.objects.bulk_create(
            ReviewMark(
                version=version, annotation_id=copied[m.annotation_id], user=m.user, action=m.action
            )
            for m in supersedes.marks.all()
            if m.annotation_id in copied
        )
    return version


def _cell_of(version: ReportVersion, annotation_id: Any):
    cell = (
        version.review_set.annotations.filter(pk=annotation_id, is_deleted=False).first()
        if isinstance(annotation_id, int)
        else None
    )
    if cell is None:
        raise InvalidInput(f"cell {annotation_id!r} is not in version {version.number}")
    return cell


def _mark(version: ReportVersion, annotation_id: int, user: User, action: str) -> None:
    ReviewMark.objects.update_or_create(
        version=version, annotation_id=annotation_id, defaults={"user": user, "action": action}
    )


def reclassify(
    *,
    version: ReportVersion,
    annotation_id: Any,
    label: Any,
    cell_version: Any,
    user: User,
):
    """Give a cell of ``version`` a new class; returns the edited annotation.

    Unknown or retired classes: 400; a stale ``cell_version``: 409 with the current cell (and
    the attempt kept in the cell's history, by the annotation services).
    """
    run = version.report.run
    check_signer(user, run)
    check_unsigned(version)
    if not isinstance(label, str) or label not in (
        active_label_keys(run.slide.project_id) & class_keys_of(run)
    ):
        raise InvalidInput(f"{label!r} is not an active class of this project", field="label")
    return _reclassify(version, _cell_of(version, annotation_id).pk, label, cell_version, user)


@transaction.atomic
def _reclassify(version: ReportVersion, pk: int, label: str, cell_version: Any, user):
    locked = ReportVersion.objects.select_for_update().get(pk=version.pk)
    check_unsigned(locked)
    before = version.review_set.annotations.get(pk=pk).label
    cell = update_annotation(
        annotation_id=pk,
        user=user,
        version=cell_version,
        changes={"label": label},
        through_report=True,
    )
    _mark(locked, pk, user, MarkAction.RECLASSIFIED)
    audit(
        version=locked,
        user=user,
        action=AuditAction.RECLASSIFIED,
        cell=pk,
        before=before,
        after=label,
        cell_version=cell.version,
    )
    return cell


@transaction.atomic
def confirm(*, version: ReportVersion, annotation_id: Any, user: User) -> None:
    """Mark a cell as looked at with its class kept."""
    check_signer(user, version.report.run)
    locked = ReportVersion.objects.select_for_update().get(pk=version.pk)
    check_unsigned(locked)
    cell = _cell_of(locked, annotation_id)
    _mark(locked, cell.pk, user, MarkAction.CONFIRMED)
    audit(version=locked, user=user, action=AuditAction.CONFIRMED, cell=cell.pk, label=cell.label)


#: The ``reason`` of a SIGN_FAILED audit entry: a wrong password, or an attempt while locked.
WRONG_PASSWORD, LOCKED_OUT = "wrong password", "locked out"


def sign(*, version: ReportVersion, user: User, password: Any) -> ReportVersion:
    """Sign ``version`` with the signed-in account plus its password, re-entered now.

    A wrong password records a failed-attempt audit entry and nothing else (403). After
    ``SIGN_FAILURE_LIMIT`` of them within ``SIGN_LOCKOUT_MINUTES`` (since the user's last
    signature), signing is refused for the rest of that window without looking at the password
    (429), and each refused attempt is audited too. Cells that need review and were not looked
    at: 409 naming how many.
    """
    check_signer(user, version.report.run)
    minutes = settings.SIGN_LOCKOUT_MINUTES
    failures = recent_sign_failures(user)
    if failures >= settings.SIGN_FAILURE_LIMIT:
        audit(version=version, user=user, action=AuditAction.SIGN_FAILED, reason=LOCKED_OUT)
        raise SignatureLocked(
            f"signing is locked after {failures} wrong passwords; try again within "
            f"{minutes} minutes of the last one, or ask an administrator",
            minutes=minutes,
        )
    if not isinstance(password, str) or not user.check_password(password):
        audit(version=version, user=user, action=AuditAction.SIGN_FAILED, reason=WRONG_PASSWORD)
        left = settings.SIGN_FAILURE_LIMIT - failures - 1
        raise WrongPassword(
            "the password is not correct; nothing was signed"
            + (f" ({left} attempts left)" if left else f"; signing is locked for {minutes} min")
        )
    return _sign(version, user)


def recent_sign_failures(user: User) -> int:
    """Wrong signature passwords of ``user`` in the lockout window, since their last signature;
    the audit log is the one record of them."""
    since = timezone.now() - timedelta(minutes=settings.SIGN_LOCKOUT_MINUTES)
    last = (
        AuditEntry.objects.filter(user=user, action__in=[AuditAction.SIGNED, AuditAction.AMENDED])
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    return AuditEntry.objects.filter(
        user=user,
        action=AuditAction.SIGN_FAILED,
        detail__reason=WRONG_PASSWORD,
        at__gt=max(since, last) if last else since,
    ).count()


@transaction.atomic
def _sign(version: ReportVersion, user: User) -> ReportVersion:
    locked = (
        ReportVersion.objects.select_for_update().select_related("report__run").get(pk=version.pk)
    )
    check_unsigned(locked)
    document = report_document(locked)
    remaining = document["review"]["remaining"]
    if remaining:
        raise ReviewIncomplete(
            f"{remaining} cells that need review have not been looked at yet",
            remaining=remaining,
        )
    locked.signed_sha256 = content_sha256(document)
    locked.signed_by = user
    locked.signer_name = user.get_full_name() or user.get_username()
    locked.signed_at = timezone.now()
    locked.signer_time_zone = timezone.get_current_timezone_name()
    locked.meaning = SIGNATURE_MEANING
    locked.save()
    action = AuditAction.AMENDED if locked.number > 1 else AuditAction.SIGNED
    audit(version=locked, user=user, action=action, sha256=locked.signed_sha256)
    return locked


@transaction.atomic
def start_amendment(*, report: Report, user: User, reason: Any) -> ReportVersion:
    """A new version after the latest, signed one; its review set starts from that version's."""
    check_signer(user, report.run)
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("an amendment needs a reason", field="reason")
    latest = (
        ReportVersion.objects.select_for_update().filter(report=report).order_by("number").last()
    )
    if latest is None or not latest.is_signed:
        number = latest.number if latest is not None else 1
        raise NotSignedYet(f"version {number} is not signed yet; edit it instead of amending")
    version = _new_version(
        report,
        number=latest.number + 1,
        source=latest.review_set,
        user=user,
        reason=reason.strip(),
        supersedes=latest,
    )
    audit(
        version=version,
        user=user,
        action=AuditAction.AMENDMENT_STARTED,
        reason=version.reason,
        supersedes=latest.number,
    )
    return version
