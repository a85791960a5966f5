"""A worker process's runtime: its CPU threads and its frozen long-lived objects."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import torch

from apps.analysis import runtime
from ml.pipeline import PipelineConfig


def test_a_worker_uses_the_threads_it_is_given_and_freezes_what_it_built(settings, tmp_path):
    settings.MODEL_DIR = tmp_path  # no cards: baseline stages, built in milliseconds
    settings.ANALYSIS_DEVICE = "cpu"
    before = torch.get_num_threads()
    runtime.clear()
    gc.unfreeze()
    try:
        for threads in (1, 2):
            settings.ANALYSIS_THREADS = threads
            runtime.stages_for(PipelineConfig())
            assert torch.get_num_threads() == threads
        # Built once per config: everything alive then is out of the collector's way.
        assert gc.get_freeze_count() > 0
    finally:
        torch.set_num_threads(before)
        gc.unfreeze()
        runtime.clear()


def test_the_default_shares_the_cores_among_the_clusters_workers() -> None:
    code = "from django.conf import settings; print(settings.ANALYSIS_THREADS)"
    env = {k: v for k, v in os.environ.items() if k != "ANALYSIS_THREADS"}
    env |= {"DJANGO_SETTINGS_MODULE": "bmadcc_web.settings", "Q_WORKERS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout.split()[-1]) == max(1, (os.cpu_count() or 1) // 2)
