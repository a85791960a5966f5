"""Install the models a fresh install can have (idempotent): ``manage.py setup_models``.

Today that is the starter cell classifier, trained once in the background worker on the PBC
cells in the shared data (see :mod:`apps.registry.services`). The options make a tiny training
for tests; the defaults are the benchmarked run.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.registry import services
from apps.registry.services import StarterStatus
from ml.cards import ModelCardError


class Command(BaseCommand):
    help = "Queue the starter cell classifier's training when no classifier card is installed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--img-size", type=int, default=None)
        parser.add_argument("--limit-per-class", type=int, default=None)

    def handle(self, *args, **options) -> None:
        data_dir = settings.SHARED_DATA_DIR / "cells" / "PBC"
        model_dir = settings.MODEL_DIR
        knobs = services.starter_options(
            epochs=options["epochs"],
            img_size=options["img_size"],
            limit_per_class=options["limit_per_class"],
        )
        try:
            status = services.queue_starter_classifier(
                model_dir=model_dir, data_dir=data_dir, options=knobs
            )
        except ModelCardError as exc:
            # The app still starts; every analysis would stop on this card, so say which.
            self.stderr.write(f"Cell classifier: nothing queued; fix or remove the card: {exc}")
            return
        self.stdout.write(_MESSAGES[status].format(model_dir=model_dir, data_dir=data_dir))


_MESSAGES = {
    StarterStatus.INSTALLED: "Cell classifier: a card is installed in {model_dir}.",
    StarterStatus.QUEUED: (
        "Cell classifier: none installed; the starter (PBC, NOT marrow-validated) is training "
        "in the background worker into {model_dir} (progress in the worker log)."
    ),
    StarterStatus.ALREADY_QUEUED: "Cell classifier: the starter training is already queued or running.",
    StarterStatus.NO_DATA: (
        "Cell classifier: no PBC cells at {data_dir}; train one later with "
        "`python -m ml train cell-classifier --data DIR --out {model_dir}`."
    ),
}
