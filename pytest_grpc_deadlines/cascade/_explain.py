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

from ._cascade import DAGSTER, Cascade, Resolved
from ._invariants import Violation, check
from ._overrides import OverrideError, load_cascade

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
        metavar="MODULE:ATTRIBUTE",
        default="",
        help="a pytest_grpc_deadlines.Cascade to use instead of the built-in Dagster cascade",
    )
    explain.add_argument("--json", action="store_true", help="print one JSON object instead")
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


def render_text(resolved: Resolved, violations: Sequence[Violation]) -> str:
    cascade = resolved.cascade
    rows = [("NAME", "VALUE", "SOURCE")]
    rows += [(s.name, _shown(resolved, s.name), resolved.source(s.name)) for s in cascade]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{cascade.name} cascade, resolved from the environment:"]
    lines += [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    if violations:
        lines.append("")
        lines += [str(v) for v in violations]
    else:
        lines += ["", "no errors, no warnings"]
    return "\n".join(lines)


def render_json(resolved: Resolved, violations: Sequence[Violation]) -> str:
    settings = []
    for setting in resolved.cascade:
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
    doc = {
        "cascade": resolved.cascade.name,
        "settings": settings,
        "violations": [
            {"severity": v.severity, "settings": list(v.settings), "message": v.message} for v in violations
        ],
        "exit_code": exit_code(violations),
    }
    # default=repr: a user's ValueRule may parse to a value JSON cannot hold.
    return json.dumps(doc, indent=2, ensure_ascii=False, default=repr)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _parser().parse_args(argv)
        if args.command != "explain":
            raise _UsageError(f"{_parser().prog}: error: a command is required: explain")
        cascade: Cascade = load_cascade(args.cascade, "--cascade") if args.cascade else DAGSTER
    except (_UsageError, OverrideError) as exc:
        print(str(exc), file=err)
        print(_parser().format_usage().rstrip(), file=err)
        return EXIT_USAGE
    resolved = cascade.resolve(os.environ if environ is None else environ)
    violations = check(resolved)
    text = render_json(resolved, violations) if args.json else render_text(resolved, violations)
    print(text, file=out)
    return exit_code(violations)
