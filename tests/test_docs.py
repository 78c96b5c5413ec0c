"""Every code example in the docs runs, and the reference lists everything the plugin adds.

The Python blocks of ``docs/**/*.md`` and ``README.md`` that define a test are written to test
files and run with pytester, one pytest run per page. They must pass, unless the comment right
before a block says otherwise:

- ``<!-- docs-test: fails "TEXT" -->``: the block's tests fail, with TEXT in the failure;
- ``<!-- docs-test: warns "TEXT" -->``: they pass with a warning whose message holds TEXT;
- ``<!-- docs-test: file NAME -->``: the block (of any language) is written to NAME beside the
  page's tests: code under test, a ``conftest.py``, a ``pyproject.toml``.

Every other Python block must compile. Snippets from ``examples/`` are ``literalinclude`` d, not
copied, and run with the examples.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import pytest_grpc_deadlines
from pytest_grpc_deadlines import strategies
from tests.needs import GRPC_TESTING_MISSING

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [*sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts), ROOT / "README.md"]
#: The inner runs: no cache files in the docs' temporary directories; no asyncio plugin (no block
#: needs it; its deprecation warnings would be noise); and warnings recorded, not raised (in-process,
#: the inner run would inherit this suite's ``filterwarnings = error``): each page says which.
# pytest-grpc (installed for the coexistence tests) registers grpc_* fixtures and --grpc-* options
# of its own: the reference lists this plugin's.
INNER_ARGS = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:pytest_grpc", "-W", "default")

_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<info>.*?)\s*$")
_COMMENT = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>.*?)\s*-->\s*$")
_KINDS = ("fails", "warns", "file")
#: MyST directives whose content is code (their argument is the language), and ones that hold no
#: Markdown to look into; every other ```{directive} may hold code blocks.
_CODE_DIRECTIVES = ("{code-block}", "{code}", "{sourcecode}")
_OPAQUE_DIRECTIVES = ("{literalinclude}", "{eval-rst}", *_CODE_DIRECTIVES)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    source: str
    kind: str = ""  # "", "fails", "warns" or "file"
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in ("python", "py", "python3")

    @property
    def is_test(self) -> bool:
        return (
            self.is_python
            and self.kind != "file"
            and re.search(r"^\s*(async\s+)?def test_", self.source, re.M) is not None
        )

    @property
    def test_file(self) -> str:
        stem = re.sub(r"\W", "_", self.page.stem.lower())
        return f"test_docs_{stem}_line{self.line}.py"


def _directive(comment: str, where: str) -> tuple[str, str]:
    words = shlex.split(comment)
    if len(words) != 2 or words[0] not in _KINDS:
        raise ValueError(
            f'{where}: <!-- docs-test: {comment} --> is not understood; use fails "TEXT", '
            'warns "TEXT" or file NAME'
        )
    return words[0], words[1]


def blocks(page: Path) -> list[Block]:
    """The page's fenced code blocks, each with the ``docs-test`` comment right before it.

    MyST directives (```` ```{note} ````) are looked into, so a block inside one is found too.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    directives: list[str] = []  # the fences of the MyST directives open around this line
    pending: tuple[str, str, int] | None = None  # a docs-test comment waiting for its block
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        comment = _COMMENT.match(line)
        if comment:
            if pending is not None:
                raise ValueError(f"{page.relative_to(ROOT)}:{pending[2]}: docs-test comment with no block")
            pending = (*_directive(comment["what"], f"{page.relative_to(ROOT)}:{number}"), number)
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and pending is not None:
                raise ValueError(f"{page.relative_to(ROOT)}:{pending[2]}: docs-test comment with no block")
            continue
        mark, info = fence["fence"], fence["info"]
        if directives and not info and mark[0] == directives[-1][0] and len(mark) >= len(directives[-1]):
            directives.pop()  # the end of a directive
            continue
        words = info.split()
        if info.startswith("{") and (not words or words[0] not in _OPAQUE_DIRECTIVES):
            directives.append(mark)
            continue
        start, body = number, []
        while number < len(lines):
            close = _FENCE.match(lines[number])
            number += 1
            if (
                close
                and not close["info"]
                and close["fence"][0] == mark[0]
                and len(close["fence"]) >= len(mark)
            ):
                break
            body.append(lines[number - 1])
        else:
            raise ValueError(f"{page.relative_to(ROOT)}:{start}: code block never closed")
        kind, argument = (pending[0], pending[1]) if pending else ("", "")
        pending = None
        language = words[0] if words else ""
        if language in _CODE_DIRECTIVES:  # ```{code-block} python, then its :options: lines
            language = words[1] if len(words) > 1 else ""
            while body and re.match(r"^\s*:[\w-]+:", body[0]):
                body.pop(0)
        source = textwrap.dedent("\n".join(body)) + "\n"
        found.append(Block(page, start, language, source, kind, argument))
    if pending is not None:
        raise ValueError(f"{page.relative_to(ROOT)}:{pending[2]}: docs-test comment with no block")
    return found


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_TESTS = [page for page in PAGES if any(block.is_test for block in blocks(page))]


# --- every block ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_python_block_compiles(page: Path) -> None:
    for block in blocks(page):
        if block.is_python:
            compile(block.source, block.where, "exec")


def test_the_docs_have_examples_that_run() -> None:
    pages = {_page_id(page) for page in PAGES_WITH_TESTS}
    assert {"README.md", "docs/tutorial.md"} <= pages
    assert sum(block.is_test for page in PAGES for block in blocks(page)) >= 20


def _reports_by_file(reports: Sequence[Any]) -> dict[str, list[Any]]:
    by_file: dict[str, list[Any]] = {}
    for report in reports:
        by_file.setdefault(report.nodeid.partition("::")[0], []).append(report)
    return by_file


def _problems(block: Block, reports: Sequence[Any], warnings: Sequence[str]) -> Iterator[str]:
    """What is wrong with how ``block``'s tests ended, as its page says they should."""
    failed = [r for r in reports if r.failed]
    text = "\n".join(r.longreprtext for r in failed)
    passed = [r for r in reports if r.when == "call" and r.passed and not hasattr(r, "wasxfail")]
    skipped = [r for r in reports if r.skipped]
    if not reports:
        yield "no test ran"
    if block.kind == "fails":
        if not failed:
            yield f"passed, but the page says it fails with {block.argument!r}"
        elif block.argument not in text:
            yield f"failed without {block.argument!r} in its failure:\n{text}"
        return
    if failed:
        yield f"failed:\n{text}"
    if skipped:
        yield f"skipped: {[r.longrepr for r in skipped]}"
    if reports and not passed:
        yield "no test passed"
    if block.kind == "warns":
        if not any(block.argument in w for w in warnings):
            yield f"did not warn with {block.argument!r}; warnings: {warnings}"
    elif warnings:
        yield f"warned: {warnings}"


def _needs_grpc_testing(source: str) -> bool:
    return re.search(r"\bgrpc_fake_server\b|\bFakeServer\b", source) is not None


@pytest.mark.parametrize("page", PAGES_WITH_TESTS, ids=_page_id)
def test_python_examples_run_as_the_page_says(page: Path, pytester: pytest.Pytester) -> None:
    page_blocks = blocks(page)
    for block in page_blocks:
        if block.kind == "file":
            path = pytester.path / block.argument
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.source, encoding="utf-8")
    tests = [block for block in page_blocks if block.is_test]
    if GRPC_TESTING_MISSING and any(_needs_grpc_testing(block.source) for block in tests):
        pytest.skip(GRPC_TESTING_MISSING)
    for block in tests:
        (pytester.path / block.test_file).write_text(block.source, encoding="utf-8")

    recorder = pytester.inline_run(*INNER_ARGS, *(block.test_file for block in tests))

    collect_errors = [r for r in recorder.getreports("pytest_collectreport") if r.failed]
    assert not collect_errors, "\n".join(f"{r.nodeid}:\n{r.longreprtext}" for r in collect_errors)
    by_file = _reports_by_file(recorder.getreports("pytest_runtest_logreport"))
    warnings: dict[str, list[str]] = {}
    for call in recorder.getcalls("pytest_warning_recorded"):
        nodeid: str = call.nodeid or ""
        warnings.setdefault(nodeid.partition("::")[0], []).append(str(call.warning_message.message))
    stray = {name: texts for name, texts in warnings.items() if name not in {b.test_file for b in tests}}
    assert not stray, f"warnings outside the page's tests: {stray}"
    problems = [
        f"{block.where}: {problem}"
        for block in tests
        for problem in _problems(block, by_file.get(block.test_file, []), warnings.get(block.test_file, []))
    ]
    assert not problems, "\n\n".join(problems)


# --- the reference -------------------------------------------------------------------------------


def _load_facts() -> ModuleType:
    """``docs/_ext/plugin_facts.py``, which the reference pages are generated from."""
    name = "_docs_plugin_facts"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DOCS / "_ext" / "plugin_facts.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_reference_page_uses_every_generated_table() -> None:
    text = (DOCS / "reference" / "plugin.md").read_text(encoding="utf-8")
    for directive in (
        "grpc-markers",
        "grpc-fixtures",
        "grpc-options",
        "grpc-ini",
        "grpc-cascade",
        "grpc-bindings",
    ):
        assert f"```{{{directive}}}" in text, directive


def test_the_generated_reference_lists_what_pytest_reports(pytester: pytest.Pytester) -> None:
    facts = _load_facts()
    markers = pytester.runpytest(*INNER_ARGS, "--markers").stdout.lines
    shown_markers = {line for line in markers if line.startswith("@pytest.mark.grpc_")}
    assert shown_markers == {f"@pytest.mark.{line}" for line in facts.markers()}

    fixtures_output = pytester.runpytest(*INNER_ARGS, "--fixtures").stdout.lines
    shown_fixtures = {m[1] for line in fixtures_output if (m := re.match(r"(grpc_\w+)\b", line))}
    assert shown_fixtures == {fixture.name for fixture in facts.fixtures()}
    assert all(fixture.doc for fixture in facts.fixtures())

    help_text = "\n".join(pytester.runpytest(*INNER_ARGS, "--help").stdout.lines)
    options, ini = facts.options_and_ini()
    assert set(re.findall(r"--grpc[\w-]+", help_text)) == {name for o in options for name in o.names}
    assert set(re.findall(r"^  (grpc_\w+) \(", help_text, re.M)) == {key.name for key in ini}


def _documented(api: str) -> set[str]:
    """The names an ``auto...::`` directive of ``api`` documents (the last part of each path)."""
    paths = re.findall(r"^\.\. auto(?:class|function|exception|data):: ([\w.]+)\s*$", api, re.M)
    return {path.rpartition(".")[2] for path in paths}


@pytest.mark.parametrize(
    "module", [pytest_grpc_deadlines, strategies], ids=lambda m: str(getattr(m, "__name__", m))
)
def test_the_api_reference_documents_every_public_name(module: ModuleType) -> None:
    api = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    public = set(module.__all__) - {"__version__"}
    assert public - _documented(api) == set()
