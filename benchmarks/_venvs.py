"""Virtualenvs for the benchmarks that run pytest in a child process, and how to run and time it.

Run ``python benchmarks/_venvs.py`` to build (or check) them and print where they are;
``startup.py`` and ``peer.py`` build them on first use. Each is made with the running interpreter
(``sys.executable -m venv``) and pip, under ``~/.cache/pytest-grpc-deadlines/bench-venvs``
(``--venvs DIR`` to put them elsewhere), and holds only what its benchmark needs:

- ``plugin``: this repository, ``pip install -e`` (no extras), so it runs the working tree's code;
- ``pytest-grpc``: ``pytest-grpc==0.8.0``.

Both pin grpcio, protobuf and pytest to the versions installed where the script runs, so the
two differ only in the plugin. A venv is reused while the marker file in it records the same
requirements (and the same interpreter and, for ``plugin``, the same dependencies and entry
points in pyproject.toml); otherwise it is rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = Path.home() / ".cache" / "pytest-grpc-deadlines" / "bench-venvs"
PYTEST_GRPC = "pytest-grpc==0.8.0"
#: Pinned in both venvs to the running interpreter's versions.
SHARED = ("grpcio", "protobuf", "pytest")
VENVS = ("plugin", "pytest-grpc")
MARKER = "bench-requirements.json"

#: Taken out of the children's environment. PYTHONDONTWRITEBYTECODE stops pytest writing its
#: assertion-rewrite cache (the plugin module, conftests and test modules it rewrites) and Python
#: writing the bytecode of the rest: with it set nothing is ever cached, every run compiles all
#: of that again, and pytest's start-up about triples (0.2 s -> 0.7 s CPU here). PYTHONPATH could
#: put the repository (or another tree) ahead of the venv's own packages; the PYTEST_* variables
#: would change what pytest loads or runs.
DROPPED_ENV = (
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "VIRTUAL_ENV",
)


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--venvs",
        type=Path,
        default=DEFAULT_DIR,
        metavar="DIR",
        help=f"where the benchmark virtualenvs are made and reused (default {DEFAULT_DIR})",
    )


def _pins() -> list[str]:
    return [f"{name}=={version(name)}" for name in SHARED]


def _project_fingerprint() -> str:
    """What an editable install takes from pyproject.toml at install time: the dependencies and
    the entry points (the ``pytest11`` one is how pytest finds the plugin)."""
    pyproject = REPO / "pyproject.toml"
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads(pyproject.read_text())["project"]
        keys = ("name", "dependencies", "entry-points")
        text = json.dumps({k: project.get(k) for k in keys}, sort_keys=True)
    else:  # no TOML parser in the standard library: any change to the file rebuilds
        text = pyproject.read_text()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def requirements(name: str) -> list[str]:
    """The ``pip install`` arguments for venv ``name``."""
    if name == "plugin":
        return ["-e", str(REPO), *_pins()]
    if name == "pytest-grpc":
        return [PYTEST_GRPC, *_pins()]
    raise ValueError(f"no benchmark venv {name!r}; there are {', '.join(VENVS)}")


def _wanted(name: str) -> str:
    record: dict[str, object] = {
        "python": sys.version,
        "base": getattr(sys, "_base_executable", sys.executable),
        "requirements": requirements(name),
    }
    if name == "plugin":
        record["pyproject"] = _project_fingerprint()
    return json.dumps(record, indent=1, sort_keys=True) + "\n"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(name: str, root: Path = DEFAULT_DIR) -> Path:
    """Venv ``name`` under ``root``, made or rebuilt if need be; returns its python."""
    venv = root.expanduser() / name
    marker = venv / MARKER
    wanted = _wanted(name)
    python = _python(venv)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"building the {name} venv in {venv} ...", flush=True)
    started = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = child_env()
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements(name)], check=True, env=env)
    marker.write_text(wanted)
    print(f"built the {name} venv in {time.perf_counter() - started:.0f} s", flush=True)
    return python


def child_env() -> dict[str, str]:
    """The environment for the children: this one less ``DROPPED_ENV``."""
    return {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}


@dataclass
class Run:
    cpu: float  # seconds, user + system, of the child (and any children it waited for)
    wall: float  # seconds
    returncode: int
    output: str  # stdout then stderr


def timed_run(args: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run ``args`` to the end; CPU time from ``getrusage(RUSAGE_CHILDREN)`` deltas around it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(cpu, wall, done.returncode, done.stdout + done.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_argument(parser)
    args = parser.parse_args(argv)
    for name in VENVS:
        python = ensure(name, args.venvs)
        print(f"{name}: {python}  ({' '.join(requirements(name))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
