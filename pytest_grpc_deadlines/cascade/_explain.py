"""``python -m pytest_grpc_deadlines explain``: resolve the current environment and judge it.

Exit codes: 0 all well, 1 warnings, 2 errors, 4 usage error (as pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, TextIO

from ._cascade import DAGSTER, Cascade, Process, Resolved
from ._invariants import Violation, check
from ._overrides import OverrideError, load_cascades
from ._processes import Environment, between, load_env_file, reads

__all__ = ["EXIT_ERRORS", "EXIT_OK", "EXIT_USAGE", "EXIT_WARNINGS", "main"]

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_ERRORS = 2
EXIT_USAGE = 4


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pytest_grpc_deadlines",
        description="Tools of pytest-grpc-deadlines.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    explain = commands.add_parser(
        "explain",
        help="resolve the timeout cascade from the environment and flag what breaks",
        description=(
            "Resolve the timeout cascade from the current environment, print each value and "
            "where it came from, then every broken invariant. Exit 0 when all is well, 1 on "
            "warnings, 2 on errors, 4 on a usage error."
        ),
    )
    explain.add_argument(
        "--cascade",
        metavar="NAME",
        action="append",
        default=[],
        help="a cascade to resolve instead of the built-in Dagster one: a built-in name (dagster, "
        "otel_otlp, grpc_simple_stubs) or MODULE:ATTRIBUTE naming a pytest_grpc_deadlines.Cascade; "
        "repeat it for several, resolved side by side",
    )
    explain.add_argument(
        "--process",
        metavar="NAME",
        default="",
        help="check only the settings this process reads (the cascade's processes: for Dagster "
        "client, code-server, code-server-start, dev)",
    )
    explain.add_argument(
        "--env-file",
        metavar="[PROCESS=]PATH",
        action="append",
        default=[],
        help="resolve from this file of NAME=VALUE lines instead of the environment; given more "
        "than once (one per process), also check the processes against each other",
    )
    explain.add_argument("--json", action="store_true", help="print one JSON object instead")
    commands.add_parser(
        "merge",
        help="merge the JSON reports of separate runs or shards (merge --help)",
        add_help=False,
    )
    return parser


def exit_code(violations: Sequence[Violation]) -> int:
    if any(v.severity == "error" for v in violations):
        return EXIT_ERRORS
    if violations:
        return EXIT_WARNINGS
    return EXIT_OK


def _shown(resolved: Resolved, name: str) -> str:
    if name in resolved.errors:
        return "INVALID"
    return repr(resolved[name])


def render_text(
    resolved: Resolved,
    violations: Sequence[Violation],
    process: Process | None = None,
    source: str = "the environment",
) -> str:
    cascade = resolved.cascade
    rows = [("NAME", "VALUE", "SOURCE")]
    rows += [
        (s.name, _shown(resolved, s.name), resolved.source(s.name))
        for s in cascade
        if reads(process, (s.name,))
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    who = f" for {process.name} ({process.description})" if process else ""
    lines = [f"{cascade.name} cascade{who}, resolved from {source}:"]
    lines += [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    if violations:
        lines.append("")
        lines += [str(v) for v in violations]
    else:
        lines += ["", "no errors, no warnings"]
    return "\n".join(lines)


def render_json(resolved: Resolved, violations: Sequence[Violation]) -> str:
    return _dumps(_json_doc(resolved, violations, None))


def _dumps(doc: object) -> str:
    # default=repr: a user's ValueRule may parse to a value JSON cannot hold.
    return json.dumps(doc, indent=2, ensure_ascii=False, default=repr)


def _json_doc(
    resolved: Resolved, violations: Sequence[Violation], process: Process | None
) -> dict[str, object]:
    settings = []
    for setting in resolved.cascade:
        if not reads(process, (setting.name,)):
            continue
        error = resolved.errors.get(setting.name)
        settings.append(
            {
                "name": setting.name,
                "env_var": setting.env_var,
                "raw": resolved.raw(setting.name),
                "value": None if error else resolved[setting.name],
                "source": resolved.source(setting.name),
                "error": str(error) if error else None,
            }
        )
    return {
        "cascade": resolved.cascade.name,
        "settings": settings,
        "violations": [
            {"severity": v.severity, "settings": list(v.settings), "message": v.message} for v in violations
        ],
        "exit_code": exit_code(violations),
    }


def _process(cascade: Cascade, name: str, where: str) -> Process:
    for process in cascade.processes:
        if process.name == name:
            return process
    accepted = ", ".join(p.name for p in cascade.processes) or "none: the cascade names no processes"
    raise _UsageError(
        f"{where}: unknown process {name!r} for the {cascade.name} cascade; accepted: {accepted}"
    )


def _environments(
    cascade: Cascade, process: str, env_files: Sequence[str], environ: Mapping[str, str]
) -> list[Environment]:
    default = _process(cascade, process, "--process") if process else None
    if not env_files:
        return [Environment("the environment", default, environ)]
    out = []
    for spec in env_files:
        chosen = default
        name, sep, path = spec.partition("=")
        if sep and name and all(c.isalnum() or c in "-_" for c in name) and not os.path.exists(spec):
            chosen = _process(cascade, name, f"--env-file {spec}")
        else:
            path = spec
        try:
            values = load_env_file(path)
        except (OSError, ValueError) as exc:
            raise _UsageError(f"--env-file {spec}: {exc}") from None
        out.append(Environment(path, chosen, values))
    return out


def _render_many(
    environments: Sequence[Environment],
    results: Sequence[tuple[Resolved, list[Violation]]],
    crossed: Sequence[tuple[str, Violation]],
    as_json: bool,
    worst: int,
) -> str:
    if as_json:
        doc = {
            "cascade": results[0][0].cascade.name,
            "processes": [
                {
                    "process": env.process.name if env.process else None,
                    "source": env.source,
                    **_json_doc(resolved, violations, env.process),
                }
                for env, (resolved, violations) in zip(environments, results, strict=True)
            ],
            "between": [
                {
                    "processes": pair,
                    "severity": v.severity,
                    "settings": list(v.settings),
                    "message": v.message,
                }
                for pair, v in crossed
            ],
            "exit_code": worst,
        }
        return _dumps(doc)
    parts = [
        render_text(resolved, violations, env.process, env.source)
        for env, (resolved, violations) in zip(environments, results, strict=True)
    ]
    if len(environments) > 1:
        lines = ["between the processes:"]
        lines += [f"{v.severity}: {pair}: {v.message}" for pair, v in crossed] or ["  no errors, no warnings"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "merge":  # python -m pytest_grpc_deadlines merge runs it; not here
            raise _UsageError(f"{parser.prog}: error: run merge as: python -m pytest_grpc_deadlines merge")
        if args.command != "explain":
            raise _UsageError(f"{parser.prog}: error: a command is required: explain or merge")
        cascade: Cascade = load_cascades(args.cascade, "--cascade") if args.cascade else DAGSTER
        environments = _environments(
            cascade, args.process, args.env_file, os.environ if environ is None else environ
        )
    except (_UsageError, OverrideError) as exc:
        print(str(exc), file=err)
        print(parser.format_usage().rstrip(), file=err)
        return EXIT_USAGE
    results = []
    for env in environments:
        resolved = cascade.resolve(env.values)
        results.append((resolved, [v for v in check(resolved) if reads(env.process, v.settings)]))
    crossed = between(environments, [resolved for resolved, _ in results])
    worst = exit_code([v for _, vs in results for v in vs] + [v for _, v in crossed])
    if args.json and len(environments) == 1 and environments[0].process is None:
        print(render_json(*results[0]), file=out)  # one environment: the plain JSON shape
    else:
        print(_render_many(environments, results, crossed, args.json, worst), file=out)
    return worst
