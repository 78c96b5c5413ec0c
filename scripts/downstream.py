"""Run other projects' test suites with and without the plugin, and fail when any outcome differs.

Run ``python scripts/downstream.py`` (or ``tox -e downstream``) from anywhere. For each suite in
:data:`SUITES` it downloads the pinned release's sdist (``pip download --no-binary :all:``, cached),
unpacks it afresh, and makes (or reuses) a venv of its own under the work directory with the release,
its test dependencies and the plugin installed, pinned by ``constraints/downstream.txt``. The plugin
goes in as a wheel built from the work tree at every run (an editable install would put the
repository's root, and its ``tests`` package, on every suite's ``sys.path``). A venv is rebuilt only
when its pins, the release, the plugin's dependencies or the Python change (or with ``--recreate``).

Each suite then runs twice in its venv, one run after the other: without the plugin
(``-p no:grpc_deadlines``) and with it (the default: it loads through its entry point), with
``-p no:cacheprovider`` and ``PYTHONDONTWRITEBYTECODE=1`` both times, so neither run leaves anything
for the next. A small plugin of this script's, passed with ``-p``, writes each test's outcome as a
JSON line, and whether the plugin was loaded, which the script checks. Every run is bounded three
ways: ``--test-timeout`` per test (pytest-timeout, installed in every venv; an overrun fails that test
and the run goes on), ``--run-timeout`` per run and ``--max-rss`` for the run's process group (a
watchdog reads /proc twice a second), past either of which the whole group is killed and the tests
not finished count as not run. (No ``ulimit -v``: grpc's threads reserve far more address space than
they use, so a cap low enough to matter breaks runs without the plugin too.)

It prints a table of each suite's counts, wall time and peak memory both ways and the time ratio,
then every test whose outcome differs (``--max-list`` of them; all are in ``<work>/logs``). Tests that
fail without the plugin too are reported but are no difference. Exit status: 0 when every suite's
outcomes (and pytest's exit status) are the same both ways, 1 when any differ or a suite ran no test
without the plugin, 2 when a suite could not be set up. ``--stability N`` instead runs each suite N
times without the plugin and lists the tests whose outcome varies: the only tests :data:`SUITES` may
deselect, each with its reason.

On the project's 2-core machines the whole env takes about 70 s when the venvs are there (the runs
themselves, google-api-core's 20 s twice the most of it) and about 2 minutes cold (sdists and four
venvs; pip's own cache warm). A run the plugin hangs costs up to ``--run-timeout`` more.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints" / "downstream.txt"
PLUGIN_NAME = "grpc_deadlines"  # the pytest11 entry point's name
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Suite:
    """A released project whose own tests must come out the same with the plugin as without."""

    name: str  # the release's PyPI name, --suite's value and its [section] in constraints/downstream.txt
    version: str
    extras: tuple[str, ...] = ()  # of the release, installed from its sdist
    deps: tuple[str, ...] = ()  # its test dependencies (versions from the constraints)
    paths: tuple[str, ...] = ("tests",)  # relative to the directory the run starts in
    args: tuple[str, ...] = ()  # flags the suite needs (its own config, where the sdist lacks it)
    config: str = ""  # the sdist's own pytest config file, if it has one (else an empty one is used)
    deselect: tuple[tuple[str, str], ...] = ()  # (node id, why): only tests nondeterministic without us
    # Makes the directory to run in from the unpacked sdist and the venv's python (default: the sdist).
    prepare: Callable[[Path, Path], Path] | None = None
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def prepare_pytest_grpc(source: Path, python: Path) -> Path:
    """pytest-grpc's example suite, from the usage its sdist's README gives.

    The sdist ships no example directory, but its README has the example's pieces: the proto, the
    servicer, the fixtures module and the two tests (one passes, one fails on purpose: its servicer
    raises). The proto in the README lacks the ``error_handler`` RPC that its servicer implements and
    its test calls (the README's sample output shows that call failing at the server); it is added
    here, so that the test fails as the README shows instead of on a missing stub attribute.
    """
    readme = (source / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(\w*)[ \t]*\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)

    def block(lang: str, needle: str) -> str:
        found: list[str] = [body for kind, body in blocks if kind == lang and needle in body]
        if not found:
            raise SetupError(f"pytest-grpc's README has no {lang} block with {needle!r}")
        return found[0]

    proto, count = re.subn(
        r"(rpc handler\(EchoRequest\) returns \(EchoResponse\) \{\s*\})",
        r"\1\n    rpc error_handler(EchoRequest) returns (EchoResponse) {\n    }",
        block("proto", "service EchoService"),
    )
    if count != 1:
        raise SetupError("pytest-grpc's README proto no longer has the handler RPC this script expects")
    example = source / "example"
    (example / "stub").mkdir(parents=True)
    (example / "stub" / "__init__.py").write_text("")
    (example / "stub" / "test.proto").write_text(proto)
    (example / "servicer.py").write_text(block("python", "class Servicer"))
    fixtures = block("python", "def grpc_add_to_server")  # the first: the plain server, not the TLS one
    tests = block("python", "def test_some")
    (example / "test_example.py").write_text(f"{fixtures}\n\n{tests}")
    protoc = [str(python), "-m", "grpc_tools.protoc", "-I", ".", "--python_out=.", "--grpc_python_out=."]
    checked([*protoc, "stub/test.proto"], cwd=example)
    return example


#: The suites, each at a pinned release. Nothing is deselected: ``--stability 5`` found no test whose
#: outcome varies without the plugin.
SUITES: tuple[Suite, ...] = (
    Suite(
        "google-cloud-texttospeech",
        "2.38.0",
        deps=("pytest-asyncio", "mock", "asyncmock"),
        paths=("tests/unit",),
    ),
    Suite(
        "google-api-core",
        "2.29.0",
        extras=("grpc",),
        deps=("pytest-asyncio", "pytest-mock", "mock", "asyncmock"),
        paths=("tests/unit", "tests/asyncio"),
        config="pyproject.toml",
        # Its pyproject's [tool.pytest] (read by pytest 9) makes every warning an error. That turns two
        # deprecation warnings about the suite's own set-up into collection errors: pytest-asyncio's
        # (no asyncio_default_fixture_loop_scope) and pytest 9's (a generator given to parametrize).
        args=(
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-W",
            "ignore::pytest.PytestRemovedIn10Warning",
        ),
    ),
    Suite(
        "opentelemetry-instrumentation-grpc",
        "0.66b2",
        extras=("instruments",),
        deps=("opentelemetry-test-utils", "opentelemetry-sdk", "protobuf"),
        paths=("tests",),
    ),
    Suite(
        "pytest-grpc",
        "0.8.0",
        deps=("grpcio-tools",),
        paths=("test_example.py",),
        prepare=prepare_pytest_grpc,
        note="the example suite is rebuilt from its README (the sdist has no example directory)",
    ),
)

#: Written to the work directory and loaded in both runs with ``-p downstream_outcomes``.
OUTCOMES_PLUGIN = '''\
"""Written by scripts/downstream.py: each test's outcome, one JSON line, to $DOWNSTREAM_OUTCOMES."""

import json
import os

import pytest

_OUT = open(os.environ["DOWNSTREAM_OUTCOMES"], "a", buffering=1, encoding="utf-8")


def _write(**fields):
    _OUT.write(json.dumps(fields) + "\\n")


def _reason(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    return text.strip().splitlines()[0][:160] if text.strip() else ""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    _write(event="configure", plugin=config.pluginmanager.has_plugin("grpc_deadlines"))


def pytest_collectreport(report):
    if report.failed:
        _write(event="report", id=report.nodeid, when="collect", outcome="error", reason=_reason(report))


def pytest_runtest_logstart(nodeid, location):
    _write(event="start", id=nodeid)


def pytest_runtest_logreport(report):
    outcome = report.outcome
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    reason = _reason(report) if report.failed or report.skipped else ""
    _write(event="report", id=report.nodeid, when=report.when, outcome=outcome, reason=reason)


def pytest_sessionfinish(session, exitstatus):
    _write(event="finish", exit=int(exitstatus))
'''

#: How each combined outcome is counted in the table.
COLUMNS: dict[str, str] = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "hung": "failed",
    "crashed": "failed",
    "skipped": "skipped",
    "xfailed": "skipped",
    "error": "errors",
}


class SetupError(Exception):
    """A suite could not be downloaded, unpacked or installed."""


class _Terminated(Exception):
    """SIGTERM, turned into an exception so that the ``finally`` blocks run."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(f"signal {signum}")


def say(message: str) -> None:
    print(f"downstream: {message}", flush=True)


def checked(command: Sequence[str], *, cwd: Path | None = None, log: Path | None = None) -> None:
    """Run a set-up command; on failure raise SetupError with the end of its output."""
    result = subprocess.run(
        list(command), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise SetupError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")


# set-up -------------------------------------------------------------------------------------------
def read_constraints(path: Path) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([\w.-]+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is None:
            raise SetupError(f"{path}:{number}: a pin before any [section]")
        else:
            current.append(line)
    return sections


def _pinned_names(lines: Sequence[str]) -> set[str]:
    return {_normal(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]) for line in lines}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_dependencies() -> str:
    """What of the plugin's pyproject decides its venvs' contents: its dependencies."""
    text = (ROOT / "pyproject.toml").read_text()
    if sys.version_info < (3, 11):  # no tomllib: any change to pyproject.toml rebuilds the venvs
        return text
    import tomllib

    return json.dumps(tomllib.loads(text)["project"].get("dependencies", []))


def fetch_sdist(suite: Suite, cache: Path) -> Path:
    folder = cache / f"{suite.name}-{suite.version}"
    found = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.zip"))
    if not found:
        say(f"downloading the {suite.label} sdist")
        folder.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        checked([*pip, "--dest", str(folder), f"{suite.name}=={suite.version}"])
        found = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.zip"))
    if len(found) != 1:
        raise SetupError(f"expected one sdist in {folder}, found {[p.name for p in found]}")
    return found[0]


def unpack(sdist: Path, into: Path) -> Path:
    """The sdist's top directory, unpacked afresh under ``into``."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    if sdist.suffix == ".zip":
        shutil.unpack_archive(sdist, into)
    else:
        with tarfile.open(sdist) as archive:
            archive.extractall(into, filter="data")
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise SetupError(f"{sdist.name} does not unpack into one directory")
    return tops[0]


def build_plugin(into: Path) -> Path:
    """A wheel of the plugin as the work tree has it now."""
    shutil.rmtree(into, ignore_errors=True)
    checked(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(into), str(ROOT)]
    )
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise SetupError(f"building the plugin gave {[p.name for p in wheels]}")
    return wheels[0]


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(
    suite: Suite, venv: Path, sdist: Path, wheel: Path, pins: list[str], work: Path, recreate: bool
) -> bool:
    """Make the suite's venv unless an up-to-date one is there; True when it was (re)made."""
    key = hashlib.sha256(
        json.dumps(
            [
                sys.version,
                pins,
                suite.extras,
                suite.deps,
                hashlib.sha256(sdist.read_bytes()).hexdigest(),
                plugin_dependencies(),
            ]
        ).encode()
    ).hexdigest()
    stamp = venv / "downstream-key"
    if not recreate and stamp.is_file() and stamp.read_text() == key:
        return False
    say(f"making the {suite.name} venv")
    shutil.rmtree(venv, ignore_errors=True)
    constraints = work / "constraints" / f"{suite.name}.txt"
    constraints.parent.mkdir(parents=True, exist_ok=True)
    constraints.write_text("\n".join(pins) + "\n")
    log = work / "logs" / f"{suite.name}-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    checked([sys.executable, "-m", "venv", str(venv)], log=log)
    extras = f"[{','.join(suite.extras)}]" if suite.extras else ""
    requirements = [f"{suite.name}{extras} @ {sdist.as_uri()}", *suite.deps, "pytest-timeout", str(wheel)]
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    checked([*pip, "--constraint", str(constraints), *requirements], log=log)
    unpinned = _unpinned(venv, pins, suite.name)
    if unpinned:
        say(f"{suite.name}: not pinned in {CONSTRAINTS.name} (add them): {', '.join(unpinned)}")
    stamp.write_text(key)
    return True


def reinstall_plugin(venv: Path, wheel: Path) -> None:
    """Put this run's build of the plugin into a venv made before (its dependencies are there)."""
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    checked([*pip, "--no-deps", "--force-reinstall", str(wheel)])


def _unpinned(venv: Path, pins: Sequence[str], own: str) -> list[str]:
    listing = subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    known = _pinned_names(pins) | {"pip", "setuptools", _normal(own), "pytest-grpc-deadlines"}
    return [
        f"{d['name']}=={d['version']}" for d in json.loads(listing.stdout) if _normal(d["name"]) not in known
    ]


# runs ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    plugin: bool
    outcomes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    exit: int | None = None
    killed: str = ""  # why the run was killed, if it was
    seconds: float = 0.0
    peak_mib: float = 0.0
    plugin_loaded: bool | None = None
    log: Path | None = None

    @property
    def status(self) -> str:
        """pytest's exit status, or why the run was killed: compared between the two runs."""
        return f"killed ({self.killed})" if self.killed else f"exit {self.exit}"

    def counts(self, every: Sequence[str]) -> Counter[str]:
        counts: Counter[str] = Counter(COLUMNS[self.outcomes[t]] for t in self.outcomes)
        counts["not run"] = sum(1 for t in every if t not in self.outcomes)
        return counts


def group_rss(pgid: int) -> int:
    """Bytes resident in the processes of group ``pgid``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5, pgrp (fields[0] is field 3)
                total += int(fields[21]) * PAGE  # field 24, rss in pages
        except (OSError, IndexError, ValueError):
            continue
    return total


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and everything it started (it leads its own process group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_suite(
    suite: Suite,
    python: Path,
    cwd: Path,
    plugin: bool,
    work: Path,
    options: argparse.Namespace,
    tag: str = "",
) -> Run:
    """One pytest run of ``suite``, bounded in time and memory, its outcomes read back."""
    mode = "with" if plugin else "without"
    logs = work / "logs"
    log = logs / f"{suite.name}-{mode}{tag}.log"
    outcomes_file = logs / f"{suite.name}-{mode}{tag}.jsonl"
    outcomes_file.unlink(missing_ok=True)
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "downstream_outcomes"]
    if not plugin:
        command += ["-p", f"no:{PLUGIN_NAME}"]
    # The work directory may lie inside this repository (tox's does): without its own config file
    # and rootdir, pytest would take up this project's pyproject.toml and its settings.
    config = cwd / suite.config if suite.config else work / "helper" / "pytest.ini"
    command += ["--rootdir", str(cwd), "--config-file", str(config)]
    command += [f"--timeout={options.test_timeout:g}", "-rfE", "--color=no", *suite.args]
    for test, _why in suite.deselect:
        command += ["--deselect", test]
    command += [*options.pytest_arg, *suite.paths]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k not in ("PYTHONPATH", "PYTHONHOME")
    }
    env.update(
        PYTHONPATH=str(work / "helper"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        DOWNSTREAM_OUTCOMES=str(outcomes_file),
        VIRTUAL_ENV=str(python.parent.parent),
        PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    run = Run(plugin, log=log)
    limit = options.max_rss * 2**20
    start = time.monotonic()
    with log.open("wb") as out:
        out.write(f"$ cd {cwd} && {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a kill reaches whatever it started
        )
        try:
            while True:
                try:
                    run.exit = process.wait(0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                rss = group_rss(process.pid)
                run.peak_mib = max(run.peak_mib, rss / 2**20)
                if rss > limit:
                    run.killed = f"over {options.max_rss} MiB"
                elif time.monotonic() - start > options.run_timeout:
                    run.killed = f"over {options.run_timeout:g} s"
                if run.killed:
                    break
        finally:
            _kill_group(process)
    run.seconds = time.monotonic() - start
    if run.killed:
        with log.open("a") as out:
            out.write(f"\ndownstream: killed the run: {run.killed}\n")
    read_outcomes(run, outcomes_file)
    return run


def read_outcomes(run: Run, path: Path) -> None:
    """Fold each test's phase reports into one outcome (see COLUMNS for the names)."""
    phases: dict[str, dict[str, str]] = {}
    started: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed run may be cut short
            continue
        kind = event["event"]
        if kind == "configure":
            run.plugin_loaded = bool(event["plugin"])
        elif kind == "start":
            started.append(event["id"])
        elif kind == "report":
            phases.setdefault(event["id"], {})[event["when"]] = event["outcome"]
            if event.get("reason") and event["outcome"] not in ("passed", "skipped"):
                run.reasons.setdefault(event["id"], event["reason"])
    for test, seen in phases.items():
        run.outcomes[test] = combine(seen)
    if started and "teardown" not in phases.get(started[-1], {}):  # the run ended during a test
        run.outcomes[started[-1]] = "hung" if run.killed else "crashed"
        run.reasons[started[-1]] = f"the run ended during this test ({run.status})"


def combine(phases: dict[str, str]) -> str:
    if phases.get("collect") == "error" or phases.get("setup") == "failed":
        return "error"
    main = phases.get("call") or phases.get("setup", "error")  # skipped at setup: no call
    if phases.get("teardown") == "failed" and main != "failed":
        return "error"
    return main


# the report ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    suite: Suite
    without: Run
    with_: Run

    @property
    def tests(self) -> list[str]:
        return sorted(set(self.without.outcomes) | set(self.with_.outcomes))

    def differences(self) -> list[tuple[str, str, str]]:
        return [
            (t, self.without.outcomes.get(t, "not run"), self.with_.outcomes.get(t, "not run"))
            for t in self.tests
            if self.without.outcomes.get(t) != self.with_.outcomes.get(t)
        ]

    def problems(self) -> list[str]:
        found = []
        if not self.without.outcomes:
            found.append("no test ran without the plugin: the suite's set-up is broken")
        if self.without.plugin_loaded is not False:
            found.append(f"-p no:{PLUGIN_NAME} did not keep the plugin out")
        if self.with_.plugin_loaded is not True:
            loaded = "pytest never got as far as configuring" if self.with_.plugin_loaded is None else "no"
            found.append(f"the plugin was not loaded in the run with it ({loaded})")
        if self.without.status != self.with_.status:
            found.append(f"pytest's status differs: {self.without.status} without, {self.with_.status} with")
        ran, unrun = self.split()
        if ran:
            found.append(f"{len(ran)} tests' outcomes differ")
        missing_without = sum(1 for _, without, _ in unrun if without == "not run")
        missing_with = len(unrun) - missing_without
        if missing_without:
            found.append(f"{missing_without} tests not run without the plugin ({self.without.status})")
        if missing_with:
            found.append(f"{missing_with} tests not run with the plugin ({self.with_.status})")
        return found

    def split(self) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """The differences: tests that ran both ways, and tests that one of the runs never got to."""
        differences = self.differences()
        return (
            [d for d in differences if "not run" not in d[1:]],
            [d for d in differences if "not run" in d[1:]],
        )


def print_table(results: Sequence[Outcome]) -> None:
    headers = [
        "suite",
        "plugin",
        "passed",
        "failed",
        "skipped",
        "errors",
        "not run",
        "status",
        "wall",
        "peak",
        "ratio",
    ]
    rows: list[list[str]] = []
    for result in results:
        for run in (result.without, result.with_):
            counts = run.counts(result.tests)
            ratio = ""
            if run is result.with_ and result.without.seconds > 0:
                ratio = f"x{result.with_.seconds / result.without.seconds:.2f}"
            rows.append(
                [
                    result.suite.label if run is result.without else "",
                    "with" if run.plugin else "without",
                    *(str(counts[c]) for c in ("passed", "failed", "skipped", "errors", "not run")),
                    run.status,
                    f"{run.seconds:.1f} s",
                    f"{run.peak_mib:.0f} MiB",
                    ratio,
                ]
            )
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    numeric = {2, 3, 4, 5, 6, 8, 9}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row).rstrip())


def report(results: Sequence[Outcome], work: Path, max_list: int) -> bool:
    """Print the table and each suite's differences; True when every suite came out the same."""
    print()
    print_table(results)
    same = True
    for result in results:
        suite = result.suite
        problems = result.problems()
        print()
        if not problems:
            print(f"{suite.label}: the same with the plugin as without")
        else:
            same = False
            print(f"{suite.label}: DIFFERENT: {'; '.join(problems)}")
        if suite.note:
            print(f"    note: {suite.note}")
        differences = result.differences()
        if differences:
            listing = work / "logs" / f"{suite.name}-differences.txt"
            listing.write_text(
                "".join(f"{t}\t{a}\t{b}\t{result.with_.reasons.get(t, '')}\n" for t, a, b in differences)
            )
            ran, unrun = result.split()
            for test, without, with_ in ran[:max_list]:
                reason = result.with_.reasons.get(test, "") or result.without.reasons.get(test, "")
                print(f"    {test}: {without} without, {with_} with" + (f" ({reason})" if reason else ""))
            if len(ran) > max_list:
                print(f"    ... and {len(ran) - max_list} more")
            if unrun:
                print(f"    and {len(unrun)} tests that one run never got to, e.g. {unrun[0][0]}")
            print(f"    every difference: {listing}")
        failing = sorted(t for t, o in result.without.outcomes.items() if COLUMNS[o] in ("failed", "errors"))
        if failing:
            print(f"    fails without the plugin too ({len(failing)}, not our doing):")
            for test in failing[:max_list]:
                reason = result.without.reasons.get(test, "")
                print(f"        {test}: {result.without.outcomes[test]} ({reason})")
        for run in (result.without, result.with_):
            if run.killed or run.exit not in (0, 1):
                print(
                    f"    run {'with' if run.plugin else 'without'} the plugin: {run.status}; see {run.log}"
                )
        for test, why in suite.deselect:
            print(f"    deselected: {test}: {why}")
    print()
    print(f"downstream: logs and outcomes in {work / 'logs'}")
    return same


def stability(
    suite: Suite, python: Path, cwd: Path, work: Path, options: argparse.Namespace
) -> list[tuple[str, Counter[str]]]:
    """Run the suite ``--stability`` times without the plugin; the tests whose outcome varied."""
    runs: list[Run] = []
    for number in range(1, options.stability + 1):
        run = run_suite(suite, python, cwd, False, work, options, tag=f"-{number}")
        say(f"{suite.name} without the plugin, run {number}: {run.status}, {run.seconds:.1f} s")
        runs.append(run)
    tests = sorted({t for run in runs for t in run.outcomes})
    seen = [(t, Counter(run.outcomes.get(t, "not run") for run in runs)) for t in tests]
    return [(t, counter) for t, counter in seen if len(counter) > 1]


# main ---------------------------------------------------------------------------------------------
def default_work_dir() -> Path:
    if os.environ.get("DOWNSTREAM_WORK_DIR"):
        return Path(os.environ["DOWNSTREAM_WORK_DIR"])
    return ROOT / ".tox" / "downstream" / "work"


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def main(argv: Sequence[str] | None = None) -> int:
    names = [s.name for s in SUITES]
    parser = argparse.ArgumentParser(
        description="Run other projects' suites with and without the plugin; fail if any outcome differs.",
        epilog="Suites: " + ", ".join(s.label for s in SUITES),
    )
    parser.add_argument(
        "--suite", action="append", choices=names, metavar="NAME", help="run only this suite (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="sdists, venvs and logs (default: $DOWNSTREAM_WORK_DIR, else .tox/downstream/work)",
    )
    parser.add_argument("--recreate", action="store_true", help="rebuild the suites' venvs")
    parser.add_argument(
        "--test-timeout", type=float, default=30.0, help="seconds one test may take (default 30)"
    )
    parser.add_argument(
        "--run-timeout", type=float, default=240.0, help="seconds one suite run may take (default 240)"
    )
    parser.add_argument(
        "--max-rss", type=int, default=4096, help="MiB a run's processes may hold resident (default 4096)"
    )
    parser.add_argument(
        "--max-list", type=int, default=25, help="differing tests listed per suite (default 25)"
    )
    parser.add_argument(
        "--pytest-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra pytest argument for both runs, e.g. --pytest-arg=-x (repeatable)",
    )
    parser.add_argument(
        "--stability",
        type=int,
        default=0,
        metavar="N",
        help="instead: run each suite N times without the plugin and list tests whose outcome varies",
    )
    options = parser.parse_args(argv)
    if options.list:
        for suite in SUITES:
            print(f"{suite.name:36} {suite.version:10} {' '.join(suite.paths)}")
        return 0
    if options.test_timeout <= 0 or options.run_timeout <= 0 or options.max_rss <= 0:
        parser.error("the time and memory limits must be above 0")
    suites = [s for s in SUITES if not options.suite or s.name in options.suite]
    work: Path = (options.work_dir or default_work_dir()).resolve()
    for sub in ("logs", "helper"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "helper" / "downstream_outcomes.py").write_text(OUTCOMES_PLUGIN)
    (work / "helper" / "pytest.ini").write_text("[pytest]\n")  # for the suites that have no config
    started = time.monotonic()
    results: list[Outcome] = []
    with signals_as_exceptions():
        try:
            sections = read_constraints(CONSTRAINTS)
            say("building the plugin's wheel from the work tree")
            wheel = build_plugin(work / "wheel")
            prepared: list[tuple[Suite, Path, Path]] = []
            for suite in suites:
                sdist = fetch_sdist(suite, work / "sdists")
                pins = sections.get("common", []) + sections.get(suite.name, [])
                venv = work / "venvs" / suite.name
                if not ensure_venv(suite, venv, sdist, wheel, pins, work, options.recreate):
                    reinstall_plugin(venv, wheel)
                source = unpack(sdist, work / "src" / suite.name)
                cwd = suite.prepare(source, venv_python(venv)) if suite.prepare else source
                prepared.append((suite, venv_python(venv), cwd))
            say(f"set up in {time.monotonic() - started:.0f} s")
            if options.stability:
                varying = False
                for suite, python, cwd in prepared:
                    for test, counter in stability(suite, python, cwd, work, options):
                        varying = True
                        print(f"    {suite.name}: {test}: {dict(counter)}")
                say(f"done in {time.monotonic() - started:.0f} s")
                return 1 if varying else 0
            for suite, python, cwd in prepared:
                runs = []
                for plugin in (False, True):
                    run = run_suite(suite, python, cwd, plugin, work, options)
                    mode = "with" if plugin else "without"
                    tests = f"{len(run.outcomes)} tests"
                    say(f"{suite.name} {mode} the plugin: {run.status}, {tests}, {run.seconds:.1f} s")
                    runs.append(run)
                results.append(Outcome(suite, runs[0], runs[1]))
        except SetupError as exc:
            say(f"set-up failed: {exc}")
            return 2
        except (KeyboardInterrupt, _Terminated) as exc:
            say(f"interrupted ({type(exc).__name__})")
            return 130
    same = report(results, work, options.max_list)
    say(
        f"{'identical' if same else 'DIFFERENT'}; {len(results)} suites in {time.monotonic() - started:.0f} s"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
