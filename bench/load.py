"""50 viewers and 5 annotators at once against two daphne processes. Prints ONE JSON line.

- viewers: ``--viewers`` clients (default 50), each fetching random deep-zoom tiles of the
  100,000 x 100,000 px bench slide from the levels a viewer shows, one after another over a
  keep-alive connection (session cookie, the tile fast path);
- annotators: ``--annotators`` clients (default 5), each saving one cell after another into
  its own cell set (``POST /api/annotations/``, token auth);
- for ``--seconds`` (default 60), against two daphne processes (the clients alternate between
  them, as a load balancer would) on a PostgreSQL and a Redis of the bench's own, started on
  free ports and removed afterwards (a shared server is never loaded or touched);
- figures: requests/s, p50/p95/p99 latency (ms) per kind, errors (any non-2xx or broken
  connection; target 0), and lost writes: acknowledged saves (201 with an id) missing from the
  database afterwards (target 0). The load average before and after says how busy the
  machine was.

Usage: .venv/bin/python bench/load.py [--seconds 60] [--viewers 50] [--annotators 5]
       [--slide PATH]   (default: the cached bench slide, built on first use)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.synthetic import ensure_bench_slide  # noqa: E402
from bench.world import cell_polygons  # noqa: E402
from tests.live import PrivatePostgres, PrivateRedis, daphne, seed, server_env  # noqa: E402

WORLD = """
from pathlib import Path
from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from openslide import OpenSlide
from openslide.deepzoom import DeepZoomGenerator
from rest_framework.authtoken.models import Token
from apps.accounts.models import Role
from apps.accounts.services import add_member, create_project
from apps.annotations.services import get_or_create_annotator_set
from apps.slides import services
User = get_user_model()
viewer = User.objects.create_user("viewer", password="viewer-pass-123")
project = create_project(name="load", created_by=viewer)
intake = services.register_path(project=project, path=Path(SLIDE), user=viewer)
services.ingest(intake.slide.pk)
slide = intake.slide
slide.refresh_from_db()
assert slide.status == "ready", slide.error
sets, tokens = [], []
for i in range(ANNOTATORS):
    user = User.objects.create_user(f"annotator{i}", password="annotator-pass-123")
    add_member(project=project, user=user, role=Role.ANNOTATOR)
    sets.append(get_or_create_annotator_set(slide=slide, stage="cell", user=user).pk)
    tokens.append(Token.objects.create(user=user).key)
session = SessionStore()
session[SESSION_KEY] = str(viewer.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
session.create()
with OpenSlide(SLIDE) as osr:
    levels = DeepZoomGenerator(osr, 254, 1).level_tiles
print(json.dumps({"slide": slide.pk, "session": session.session_key, "sets": sets,
                  "tokens": tokens, "levels": levels}))
"""


class Tally:
    """Latencies (s) and errors per kind, and the ids of acknowledged saves; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {"tile": [], "save": []}
        self.errors: dict[str, list[str]] = {"tile": [], "save": []}
        self.saved: list[int] = []

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            if error:
                self.errors[kind].append(error)


def request(conn_box: list, port: int, method: str, url: str, headers: dict, body=None):
    """One request over the box's keep-alive connection, reconnecting after a broken one."""
    if conn_box[0] is None:
        conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn_box[0].request(method, url, body=body, headers=headers)
        response = conn_box[0].getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        conn_box[0].close()
        conn_box[0] = None
        raise


def viewer(port: int, world: dict, until: float, seed_: int, tally: Tally) -> None:
    rng = random.Random(seed_)
    levels = world["levels"]
    shown = list(range(max(0, len(levels) - 8), len(levels)))
    headers = {"Cookie": f"sessionid={world['session']}"}
    box: list = [None]
    while time.monotonic() < until:
        level = rng.choice(shown)
        cols, rows = levels[level]
        url = f"/slides/{world['slide']}_files/{level}/{rng.randrange(cols)}_{rng.randrange(rows)}.jpeg"
        started = time.perf_counter()
        try:
            code, body = request(box, port, "GET", url, headers)
            error = None if code == 200 and body[:2] == b"\xff\xd8" else f"{url}: HTTP {code}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{url}: {exc!r}"
        tally.record("tile", time.perf_counter() - started, error)


def annotator(
    port: int, world: dict, index: int, until: float, cells: list[dict], tally: Tally
) -> None:
    headers = {
        "Authorization": f"Token {world['tokens'][index]}",
        "Content-Type": "application/json",
    }
    box: list = [None]
    for cell in cells:
        if time.monotonic() >= until:
            return
        body = json.dumps({"set": world["sets"][index], **cell})
        started = time.perf_counter()
        try:
            code, answer = request(box, port, "POST", "/api/annotations/", headers, body)
            error = None if code == 201 else f"save: HTTP {code} {answer[:200]!r}"
            if code == 201:
                with tally.lock:
                    tally.saved.append(json.loads(answer)["id"])
        except (OSError, http.client.HTTPException) as exc:
            error = f"save: {exc!r}"
        tally.record("save", time.perf_counter() - started, error)


def percentiles(values: list[float]) -> dict:
    if len(values) < 2:
        return {"n": len(values)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "n": len(values),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }


def lost_writes(env: dict, saved: list[int]) -> int:
    script = f"""
from apps.annotations.models import Annotation
ids = {saved!r}
print(json.dumps(len(ids) - Annotation.objects.filter(pk__in=ids).count()))
"""
    return int(seed(env, script))


def warm_up(ports: list[int], world: dict) -> None:
    """A tile and a set read on each server first: a fresh daphne imports the app, opens the
    slide and connects to PostgreSQL on its first requests, which is start-up, not load."""
    level = len(world["levels"]) - 1
    for port in ports:
        box: list = [None]
        tile = f"/slides/{world['slide']}_files/{level}/0_0.jpeg"
        assert (
            request(box, port, "GET", tile, {"Cookie": f"sessionid={world['session']}"})[0] == 200
        )
        token = {"Authorization": f"Token {world['tokens'][0]}"}
        url = f"/api/annotation-sets/{world['sets'][0]}/"
        assert request(box, port, "GET", url, token)[0] == 200


def run(args: argparse.Namespace, env: dict, world: dict, ports: list[int]) -> dict:
    tally = Tally()
    slide_side = 100_000
    # More cells than any annotator can save in the run; each annotator its own part of the slide.
    cells = cell_polygons(args.annotators * 5_000, seed=3, slide_size=slide_side)
    started = time.perf_counter()
    until = time.monotonic() + args.seconds
    threads = [
        threading.Thread(target=viewer, args=(ports[i % 2], world, until, i, tally))
        for i in range(args.viewers)
    ]
    threads += [
        threading.Thread(
            target=annotator,
            args=(ports[i % 2], world, i, until, cells[i :: args.annotators], tally),
        )
        for i in range(args.annotators)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    total = sum(len(v) for v in tally.latency.values())
    return {
        "seconds": round(elapsed, 1),
        "requests_per_s": round(total / elapsed, 1),
        "tiles_per_s": round(len(tally.latency["tile"]) / elapsed, 1),
        "saves_per_s": round(len(tally.latency["save"]) / elapsed, 1),
        "tile": percentiles(tally.latency["tile"]),
        "save": percentiles(tally.latency["save"]),
        "errors": sum(len(v) for v in tally.errors.values()),
        "error_examples": [e for v in tally.errors.values() for e in v[:3]],
        "acknowledged_saves": len(tally.saved),
        "lost_writes": lost_writes(env, tally.saved),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--slide", type=Path, default=None)
    args = parser.parse_args()
    slide = (args.slide or ensure_bench_slide()).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-", dir=REPO / "var" / "bench"))
    load_before = os.getloadavg()
    with ExitStack() as stack:
        pg, redis = PrivatePostgres(), PrivateRedis(scratch / "redis")
        stack.callback(pg.close)
        stack.callback(redis.stop)
        pg.start()
        redis.start()
        # The bench slide is registered in place: its folder must be an import root.
        env = server_env(
            scratch, DATABASE_URL=pg.url, REDIS_URL=redis.url, SLIDE_IMPORT_ROOTS=str(slide.parent)
        )
        world = seed(env, f"SLIDE = {str(slide)!r}\nANNOTATORS = {args.annotators}\n" + WORLD)
        urls = [stack.enter_context(daphne(env, scratch / f"daphne{i}.log")) for i in range(2)]
        ports = [int(url.rsplit(":", 1)[1]) for url in urls]
        warm_up(ports, world)
        figures = run(args, env, world, ports)
    print(
        json.dumps(
            figures
            | {
                "viewers": args.viewers,
                "annotators": args.annotators,
                "servers": "2 daphne processes, PostgreSQL, Redis (cache + channel layer)",
                "slide": f"{slide.name} (100000x100000)",
                "cpus": os.cpu_count(),
                "load_avg_before": [round(x, 1) for x in load_before],
                "load_avg_after": [round(x, 1) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
