"""What one worker process keeps between tasks: its device, its id and its built stages.

Building the stages loads every model (seconds, and memory), so a worker builds them once per
(model cards, device, config) and reuses them for every chunk it takes. django-q2 runs one task
at a time per worker process, so the cache needs no lock.
"""

from __future__ import annotations

import gc
import json
import os
import socket
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from django.conf import settings

from ml.cards import discover_cards, load_card
from ml.device import limit_cpu_threads, pick_device
from ml.pipeline import PipelineConfig, Stages, build_stages

#: Built stages kept per process; a second entry covers two configs in flight at once.
MAX_CACHED = 2
_cache: OrderedDict[str, Stages] = OrderedDict()


def worker_id() -> str:
    """``hostname:pid``: names the process that claimed a chunk."""
    return f"{socket.gethostname()}:{os.getpid()}"


def device() -> torch.device:
    """The device this worker runs on: ``ANALYSIS_DEVICE``, or CUDA when present, else CPU."""
    return pick_device(settings.ANALYSIS_DEVICE or None)


def stages_for(
    config: PipelineConfig, cards: Mapping[str, str] | None = None
) -> tuple[Stages, PipelineConfig]:
    """This worker's stages for ``config`` (built on first use) and the per-device config; the
    process's CPU threads are limited to ``ANALYSIS_THREADS`` first.

    ``cards`` maps a card task to the card file the run chose (its registry versions); the
    other tasks use ``MODEL_DIR``'s cards. Raises :class:`ml.cards.ModelCardError` for a broken
    card or weights that fail their sha256.
    """
    torch_device = device()
    limit_cpu_threads(settings.ANALYSIS_THREADS)
    config = config.for_device(torch_device)
    chosen = dict(cards or {})
    key = _key(config, torch_device, chosen)
    stages = _cache.get(key)
    if stages is None:
        found = discover_cards(settings.MODEL_DIR) | {t: load_card(p) for t, p in chosen.items()}
        stages = build_stages(found, torch_device, config)
        _cache[key] = stages
        # A worker holds millions of long-lived objects (Django, torch, the models): each full
        # collection walked them all, a 0.3 s pause measured in the middle of an assembly.
        # Frozen, they are never scanned again; what a chunk allocates is collected as before.
        gc.collect()
        gc.freeze()
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return stages, config


def _key(config: PipelineConfig, torch_device: torch.device, cards: dict[str, str]) -> str:
    # A replaced card or weights file changes its size or mtime, so the stages are rebuilt.
    files = (
        sorted(
            (str(p), p.stat().st_mtime_ns, p.stat().st_size)
            for p in Path(settings.MODEL_DIR).glob("**/*")
            if p.is_file()
        )
        if Path(settings.MODEL_DIR).is_dir()
        else []
    )
    return json.dumps([files, str(torch_device), config.to_dict(), cards], sort_keys=True)


def clear() -> None:
    """Forget every built stage (tests that swap the model folder)."""
    _cache.clear()
