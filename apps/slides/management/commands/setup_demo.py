"""Create the demo account, project and slides (idempotent): ``manage.py setup_demo``."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.accounts.models import Project, Role
from apps.accounts.roles import is_member
from apps.accounts.services import add_member, create_project
from apps.annotations.models import Stage
from apps.annotations.services import assign_task, ensure_label_schema
from apps.slides import services
from apps.slides.demo import NoSmearPhotos, ensure_demo_slide, smear_photos
from apps.slides.models import Slide, SlideSource, SlideStatus

DEMO_USER = "demo"
DEMO_ANNOTATORS = ("annotator_a", "annotator_b")
DEMO_PROJECT = "Demo marrow project"
SHARED_SLIDES = [
    "cmu-1-small-region.svs",
    "small.svs",
    "boxes.tiff",
    "broken.svs",
    "unopenable.tiff",
    "unreadable.svs",
]


class Command(BaseCommand):
    help = "Create the demo account, its project and the sample slides; ingest them."

    def handle(self, *args, **options) -> None:
        user, password = self._demo_user()
        project = Project.objects.filter(name=DEMO_PROJECT).first() or create_project(
            name=DEMO_PROJECT,
            created_by=user,
            description="Real sample slides, broken files for the error paths, and a demo smear.",
        )
        add_member(project=project, user=user, role=Role.ADMIN)
        ensure_label_schema(project=project)
        demo_slide = self._sample_slides(project, user, settings.SHARED_DATA_DIR)
        # Ingest now, so the slides are ready at first login even before the worker starts.
        for slide in Slide.objects.filter(project=project, status=SlideStatus.PENDING):
            services.ingest(slide.pk)
        self._annotators(project, demo_slide, user, password)
        if demo_slide is not None:
            self._analysis(demo_slide, user)
        self.stdout.write(self.style.SUCCESS(f"Demo ready. Log in as {DEMO_USER} / {password}"))
        self.stdout.write(f"Blinded annotators: {', '.join(DEMO_ANNOTATORS)} (same password)")

    def _sample_slides(self, project: Project, user, shared: Path) -> Slide | None:
        """Register the demo smear and the sample slides; the demo smear, or None without data.

        A clean clone has no ``../shared`` beside it: the project then starts empty, and one
        line says where samples would come from.
        """
        try:
            smear_photos(shared)
        except NoSmearPhotos:
            self.stdout.write(
                f"No sample data at {shared} (set BMADCC_SHARED_DATA to a folder with slides/ "
                "and smears/BCCD/): the demo project starts empty; upload slides in the browser "
                "or with manage.py import_slides."
            )
            return None
        self.stdout.write("Building the demo marrow smear slide (first run only)…")
        demo_file = ensure_demo_slide(shared, settings.VAR_DIR / "demo")
        demo_slide = services.register_path(
            project=project,
            path=demo_file,
            user=user,
            name="demo marrow smear",
            source=SlideSource.DEMO,
        ).slide
        for name in SHARED_SLIDES:
            path = shared / "slides" / name
            if path.exists():
                services.register_path(project=project, path=path, user=user)
            else:
                self.stderr.write(f"missing sample slide {path}")
        return demo_slide

    def _analysis(self, slide: Slide, user) -> None:
        """One analysis of the demo smear, with the models in MODEL_DIR (or the baselines)."""
        from apps.analysis.services import ensure_run

        slide.refresh_from_db()
        run = ensure_run(slide=slide, user=user)
        if run is None:
            self.stderr.write(f"the demo smear is {slide.status}; no analysis was queued")
        else:
            self.stdout.write(f"Analysis run {run.pk} of the demo smear: {run.status}")

    def _annotators(self, project, slide: Slide | None, admin, password: str) -> None:
        """Two annotators, each assigned every stage of the demo smear (when there is one)."""
        users = get_user_model()
        for username in DEMO_ANNOTATORS:
            annotator = users.objects.filter(username=username).first()
            if annotator is None:
                annotator = users.objects.create_user(username, password=password)
            elif not annotator.check_password(password):
                annotator.set_password(password)
                annotator.save(update_fields=["password"])
            if not is_member(annotator, project):
                add_member(project=project, user=annotator, role=Role.ANNOTATOR)
            if slide is None:
                continue
            for stage in Stage.values:
                assign_task(slide=slide, stage=stage, annotator=annotator, assigned_by=admin)

    def _demo_user(self):
        users = get_user_model()
        password = settings.DEMO_PASSWORD or _stored_password(settings.VAR_DIR / "demo-password")
        user = users.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = users.objects.create_user(DEMO_USER, password=password, is_staff=True)
        elif not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, password


def _stored_password(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(9)
    path.write_text(password)
    path.chmod(0o600)
    return password
