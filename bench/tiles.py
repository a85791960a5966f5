"""Tile throughput of the app against raw openslide.deepzoom, side by side, plus thumbnails.

Prints ONE JSON line. Not a test: figures depend on the machine, so compare the ratios.

- raw:  plain ``DeepZoomGenerator.get_tile`` + JPEG encode, in this process, one thread.
- app:  the tile URL through a real daphne (ASGI) server in a subprocess, over HTTP keep-alive,
        with ``--concurrency`` client connections; cold = first request of each tile (empty
        tile cache), warm = the same tiles again (server-side tile cache).
- thumbnail_factor100_s: the ROI stage's factor-100 thumbnail of the 100k slide, fresh handle.
- fast_path_warm_us: in-process cost of one granted, cached tile through the ASGI fast path
  (no sockets, no daphne), the best of 5 x 2,000 requests: the layer's own overhead, which
  the HTTP figures above drown in server and client time on a busy machine.

Usage: .venv/bin/python bench/tiles.py [--tiles 400] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.synthetic import SHARED, ensure_bench_slide  # noqa: E402

TILE_SIZE, OVERLAP, QUALITY = 254, 1, 80


def sample_tiles(dz, n: int, seed: int) -> list[tuple[int, int, int]]:
    """Random tiles from the levels a viewer actually shows (the deepest 8 deep-zoom levels)."""
    rng = random.Random(seed)
    levels = list(range(max(0, dz.level_count - 8), dz.level_count))
    picks = set()
    while len(picks) < n:
        level = rng.choice(levels)
        cols, rows = dz.level_tiles[level]
        picks.add((level, rng.randrange(cols), rng.randrange(rows)))
    return sorted(picks, key=lambda _: rng.random())


def raw_throughput(path: Path, tiles) -> float:
    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    with openslide.OpenSlide(str(path)) as osr:
        dz = DeepZoomGenerator(osr, TILE_SIZE, OVERLAP)
        started = time.perf_counter()
        for level, col, row in tiles:
            buf = io.BytesIO()
            dz.get_tile(level, (col, row)).convert("RGB").save(buf, "JPEG", quality=QUALITY)
        return len(tiles) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_app(env: dict, slides: list[Path]) -> tuple[list[int], str]:
    """Migrate a scratch database, register + ingest the slides, and mint a session cookie."""
    script = f"""
import django, json
django.setup()
from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from pathlib import Path
call_command("migrate", verbosity=0)
from apps.accounts.services import create_project
from apps.slides import services
User = get_user_model()
user = User.objects.filter(username="bench").first() or User.objects.create_user("bench", password="bench-pass-1")
from apps.accounts.models import Project
project = Project.objects.filter(name="bench").first() or create_project(name="bench", created_by=user)
ids = []
for p in {[str(s) for s in slides]!r}:
    intake = services.register_path(project=project, path=Path(p), user=user)
    services.ingest(intake.slide.pk)
    ids.append(intake.slide.pk)
s = SessionStore()
s[SESSION_KEY] = str(user.pk)
s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
s[HASH_SESSION_KEY] = user.get_session_auth_hash()
s.create()
print(json.dumps({{"ids": ids, "session": s.session_key}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["ids"], data["session"]


def fetch_all(port: int, session: str, urls: list[str], concurrency: int) -> float:
    """Requests per second for ``urls`` over ``concurrency`` keep-alive connections."""
    chunks = [urls[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for url in chunk:
            conn.request("GET", url, headers={"Cookie": f"sessionid={session}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or body[:2] != b"\xff\xd8":
                raise RuntimeError(f"{url}: HTTP {response.status}")
        conn.close()
        return len(chunk)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(worker, chunks))
    return done / (time.perf_counter() - started)


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


FAST_PATH_SCRIPT = """
import asyncio, json, sys, time
import django
django.setup()
from pathlib import Path
from apps.slides.tile_asgi import DeepZoomTiles, Grant

async def django_app(scope, receive, send):
    raise AssertionError("a granted tile fell through to Django")

app = DeepZoomTiles(django_app)
app._grants[("bench", 1)] = Grant("bench", Path(sys.argv[1]), time.monotonic() + 1e6)
scope = {"type": "http", "method": "GET", "path": "/slides/1_files/12/3_4.jpeg",
         "headers": [(b"host", b"bench"), (b"cookie", b"sessionid=bench")]}
sent = []

async def send(message):
    sent.append(message)

async def receive():
    return {"type": "http.request"}

async def main(n):
    await app(scope, receive, send)  # renders the tile once
    assert sent[0]["status"] == 200, sent[0]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            await app(scope, receive, send)
        best = min(best, (time.perf_counter() - started) / n)
        sent.clear()
    return best

print(json.dumps(asyncio.run(main(2000)) * 1e6))
"""


def fast_path_warm_us(env: dict, path: Path) -> float:
    """Microseconds per cached tile through ``DeepZoomTiles`` alone, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", FAST_PATH_SCRIPT, str(path)],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def thumbnail_seconds(path: Path) -> float:
    from ml.slide import SlideReader

    started = time.perf_counter()
    with SlideReader(path) as reader:
        thumb = reader.thumbnail_by_factor(100)
    elapsed = time.perf_counter() - started
    assert thumb.shape[0] >= 999, thumb.shape
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    big = ensure_bench_slide()
    cmu = SHARED / "slides" / "cmu-1-small-region.svs"
    scratch = Path(tempfile.mkdtemp(prefix="bench-tiles-", dir=REPO / "var" / "bench"))
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "bmadcc_web.settings",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{scratch / 'db.sqlite3'}"),
        "SLIDE_STORAGE_DIR": str(scratch / "store"),
        "SECRET_KEY": "bench-only",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    env.pop("REDIS_URL", None) if os.environ.get("BENCH_USE_REDIS") != "1" else None
    ids, session = prepare_app(env, [big, cmu])
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "bmadcc_web.asgi:application",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict = {}
    try:
        wait_for(port)
        for key, path, slide_id in (("slide_100k", big, ids[0]), ("cmu_small_region", cmu, ids[1])):
            with openslide.OpenSlide(str(path)) as osr:
                n = min(
                    args.tiles,
                    sum(
                        c * r
                        for c, r in DeepZoomGenerator(osr, TILE_SIZE, OVERLAP).level_tiles[-8:]
                    ),
                )
                tiles = sample_tiles(DeepZoomGenerator(osr, TILE_SIZE, OVERLAP), n, seed=7)
            raw = raw_throughput(path, tiles)
            urls = [f"/slides/{slide_id}_files/{lv}/{c}_{r}.jpeg" for lv, c, r in tiles]
            cold = fetch_all(port, session, urls, args.concurrency)
            warm = fetch_all(port, session, urls, args.concurrency)
            results[key] = {
                "tiles": len(tiles),
                "raw_tiles_per_s": round(raw, 1),
                "app_cold_tiles_per_s": round(cold, 1),
                "app_warm_tiles_per_s": round(warm, 1),
                "cold_vs_raw": round(cold / raw, 2),
                "warm_vs_raw": round(warm / raw, 2),
            }
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    figures = results["slide_100k"] | {
        "thumbnail_factor100_s": round(thumbnail_seconds(big), 3),
        "fast_path_warm_us": round(fast_path_warm_us(env, cmu), 1),
        "cmu_small_region": results["cmu_small_region"],
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "slide": f"{big.name} (100000x100000, 0.1 um/px)",
        "cache": "redis" if "REDIS_URL" in env else "locmem",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
