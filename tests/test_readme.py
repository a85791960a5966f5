"""The README is a newcomer's first hour: its configuration table and its commands must hold.

Every ``.venv/bin/python`` command the README shows runs here as typed into a new shell: a fresh
environment with no ``SECRET_KEY`` and ``DEBUG`` off, after what ``scripts/run.sh`` does once
(the generated ``var/secret-key``, ``migrate``, ``setup_demo``), against a temporary SQLite
database and, as on a clean clone, no shared data.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import pytest

from ml.paths import SHARED_DATA_ENV
from tests.conftest import REPO, SLIDE_FILE

README = (REPO / "README.md").read_text()
PYTHON = ".venv/bin/python"

#: Commands that stand for a long run or a server are checked with ``--help`` instead.
AS_HELP = {"-m ml analyse"}
#: Benchmarks are never part of the test run (STYLE); only their scripts' existence is checked.
BENCHMARKS = re.compile(r"^\.venv/bin/python (bench/\S+\.py|-m bench\.\w+)")
#: README placeholders and the real files that stand in for them.
PLACEHOLDERS = {"/data/scans/*.svs": str(SLIDE_FILE)}


def readme_commands() -> list[str]:
    """``.venv/bin/python ...`` lines of code blocks and inline code spans, in README order."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    found = [c for c in lines + inline if c.startswith(f"{PYTHON} ")]
    return list(dict.fromkeys(found))


def settings_variables() -> set[str]:
    """Names of the environment variables ``bmadcc_web/settings.py`` reads."""
    source = (REPO / "bmadcc_web" / "settings.py").read_text()
    reads = re.findall(r'(?:env(?:str|bool|int|path)|os\.environ\.get)\("([A-Z0-9_]+)"', source)
    return set(reads) | {SHARED_DATA_ENV}


def test_the_readme_table_documents_every_variable_settings_reads() -> None:
    table = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README, flags=re.M))
    missing = settings_variables() - table
    assert not missing, f"README's configuration table lacks {sorted(missing)}"
    assert {"DATABASE_URL", "SECRET_KEY", "Q_SYNC", "LOG_LEVEL"} <= table


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    commands = readme_commands()
    assert any("manage.py drf_create_token demo" in c for c in commands)
    assert any("manage.py import_slides" in c for c in commands)
    assert any(c.startswith(f"{PYTHON} -m ml analyse") for c in commands)


def _fresh_env(var_dir: Path, shared: Path) -> dict[str, str]:
    """A new shell's environment: no SECRET_KEY, DEBUG, DATABASE_URL or Q_SYNC of the suite."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return keep | {"BMADCC_VAR_DIR": str(var_dir), SHARED_DATA_ENV: str(shared)}


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    for placeholder, real in PLACEHOLDERS.items():
        command = command.replace(placeholder, real)
    argv = shlex.split(command)
    argv[0] = str(REPO / argv[0])
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_without_secret_key_or_its_file_manage_py_fails_loudly(tmp_path: Path) -> None:
    env = _fresh_env(tmp_path / "var", tmp_path / "no-shared-data")
    result = _run(f"{PYTHON} manage.py check", env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.slow
def test_every_readme_command_works_from_a_new_shell_after_the_first_run(tmp_path: Path) -> None:
    var_dir, shared = tmp_path / "var", tmp_path / "empty-shared-data"
    var_dir.mkdir()
    shared.mkdir()
    # What scripts/setup.sh and scripts/run.sh do once, on a clean clone with no sample data.
    (var_dir / "secret-key").write_text(secrets.token_urlsafe(50))
    env = _fresh_env(var_dir, shared)
    for step in (f"{PYTHON} manage.py migrate --noinput -v0", f"{PYTHON} manage.py setup_demo"):
        result = _run(step, env)
        assert result.returncode == 0, f"{step}\n{result.stderr}"
    assert "No sample data" in result.stdout and "Log in as demo / " in result.stdout

    ran = []
    for command in readme_commands():
        benchmark = BENCHMARKS.match(command)
        if benchmark:
            target = benchmark.group(1)
            module = target.removeprefix("-m ").replace(".", "/") + ".py"
            assert (REPO / (target if target.endswith(".py") else module)).exists(), command
            continue
        if any(command.startswith(f"{PYTHON} {prefix}") for prefix in AS_HELP):
            command = " ".join(command.split()[:4]) + " --help"
        result = _run(command, env)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran.append(command)
    assert len(ran) >= 3, ran
