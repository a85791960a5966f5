"""Register slide files already on the server's disk: ``manage.py import_slides PATH...``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.accounts.models import Project
from apps.slides import services
from apps.slides.errors import SlideError
from ml.slide import VENDOR_SUFFIXES


class Command(BaseCommand):
    help = (
        "Register slide files (or every file in folders) into a project; ingest runs in the worker."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument(
            "--copy",
            action="store_true",
            help="copy files into the slide store instead of registering them in place",
        )

    def handle(self, *args, paths: list[Path], project: str, copy: bool, **options) -> None:
        target = self._project(project)
        files = _expand(paths)
        if not files:
            raise CommandError("no files found under the given paths")
        total = sum(f.stat().st_size for f in files)
        created = duplicates = failed = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc="hashing", disable=None) as bar:
            for path in files:
                bar.set_postfix_str(path.name[:40])
                try:
                    intake = services.register_path(
                        project=target, path=path, copy=copy, progress=bar.update
                    )
                except SlideError as exc:
                    failed += 1
                    self.stderr.write(f"{path}: {exc.message}")
                    continue
                created += intake.created
                duplicates += not intake.created
        self.stdout.write(
            f"{created} registered, {duplicates} already present, {failed} refused "
            f"in project “{target.name}” (ingest runs in the worker)."
        )

    def _project(self, ref: str) -> Project:
        project = (
            Project.objects.filter(pk=int(ref)).first()
            if ref.isdigit()
            else Project.objects.filter(name=ref).first()
        )
        if project is None:
            raise CommandError(f"no project {ref!r}")
        return project


# What a folder scan picks up: OpenSlide's formats and the flat images we convert. Files named
# one by one are always taken, whatever their extension.
SLIDE_SUFFIXES = VENDOR_SUFFIXES | {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".webp"}


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file()
                    and p.suffix.lower() in SLIDE_SUFFIXES
                    and not p.name.startswith(".")
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{path} does not exist")
    return files
