"""Register the model card(s) in a folder as new versions of a project: ``manage.py
register_model DIR --project P [--activate]``. The weights are copied into the registry's
write-once store; a card that fails validation is refused with the field named."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.registry import versions
from apps.registry.errors import RegistryError


class Command(BaseCommand):
    help = "Register the model card(s) in DIR (or the card file DIR) as versions of a project."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="a folder of *.json cards, or one card")
        parser.add_argument("--project", type=int, required=True, help="project id")
        parser.add_argument("--activate", action="store_true", help="make them active")

    def handle(self, *args, **options) -> None:
        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']}")
        try:
            registered = versions.register_folder(
                project=project, path=options["path"], user=None, activate=options["activate"]
            )
        except RegistryError as exc:
            raise CommandError(exc.message) from exc
        for v in registered:
            state = "active" if options["activate"] else "inactive"
            self.stdout.write(f"registered {v.name} as {v.task} v{v.version} ({state})")
