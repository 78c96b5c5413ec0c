"""Where a call came from: the user's line, and the library frame that made the call.

A call made through a generated client, an interceptor library or any installed package is
reported at the first frame outside grpc, this package, the standard library and installed
third-party packages: the user's own code. The frame in the library that called into grpc is kept
beside it, so a report can say both. ``configure_skips`` names more module or path prefixes to
treat as library code (ini ``grpc_call_site_skip``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

__all__ = ["CallSite", "call_site", "configure_skips", "forget", "relative"]

Kind = Literal["grpc", "ours", "stdlib", "library", "user"]


def _dir(path: str) -> str:
    return os.path.join(os.path.realpath(path), "")


def _grpc_dir() -> str:
    spec = importlib.util.find_spec("grpc")
    origin = spec.origin if spec is not None and spec.origin else ""
    return _dir(os.path.dirname(origin)) if origin else "\0"


# the whole package (servers, probe, plugin), not only this subpackage
_OURS = _dir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_GRPC = _grpc_dir()
#: grpc's interceptor machinery: a frame it calls is an interceptor, not the call's origin.
_INTERCEPTOR_FILES = frozenset(
    os.path.realpath(os.path.join(_GRPC, *parts))
    for parts in (("_interceptor.py",), ("aio", "_interceptor.py"))
)


def _third_party_dirs() -> tuple[str, ...]:
    dirs: set[str] = set()
    getters: tuple[Callable[[], Iterable[str]], ...] = (
        site.getsitepackages,
        lambda: [site.getusersitepackages()],
    )
    for getter in getters:
        with contextlib.suppress(Exception):  # an old virtualenv's site module lacks these
            dirs.update(getter())
    for key in ("purelib", "platlib"):
        dirs.add(sysconfig.get_paths()[key])
    return tuple(sorted({_dir(d) for d in dirs if d}))


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(sorted({_dir(paths[key]) for key in ("stdlib", "platstdlib")}))


_THIRD_PARTY = _third_party_dirs()
_STDLIB = _stdlib_dirs()
_extra: tuple[str, ...] = ()


def configure_skips(prefixes: Iterable[str]) -> None:
    """Treat frames under these path prefixes or module-name prefixes as library code."""
    global _extra
    _extra = tuple(p.strip() for p in prefixes if p.strip())
    _kind.cache_clear()
    _direct.clear()


@functools.lru_cache(maxsize=4096)
def _kind(filename: str, module: str) -> Kind:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>: not a user's line
        return "stdlib"
    path = os.path.realpath(filename)
    if path.startswith(_GRPC):
        return "grpc"
    if path.startswith(_OURS):
        return "ours"
    if path.startswith(_THIRD_PARTY):
        return "library"
    if path.startswith(_STDLIB):
        return "stdlib"
    for prefix in _extra:
        if module == prefix or module.startswith(prefix + ".") or _under(path, prefix):
            return "library"
    return "user"


def _under(path: str, prefix: str) -> bool:
    if "/" not in prefix and not prefix.endswith(".py"):
        return False
    return path.startswith(os.path.realpath(prefix))


@functools.lru_cache(maxsize=4096)
def _is_interceptor_machinery(filename: str) -> bool:
    return os.path.realpath(filename) in _INTERCEPTOR_FILES


class CallSite(NamedTuple):
    """``site``: the user's ``file:line`` (or the best frame there is); ``library``: the frame in
    installed code that called into grpc, when it is not the user's own; ``internal``: no frame
    outside grpc, this package and the standard library (the plugin's own calls)."""

    site: str
    library: str | None
    internal: bool


_INTERNAL = CallSite("<pytest-grpc-deadlines>", None, True)


#: Calls made straight from the user's code, the common case, by the calling instruction (its
#: offset: a frame's line is decoded from the code's line table, its offset is not) and the ids
#: of the calling code and its caller's: (the two code objects, the module, the base, the site).
#: Looked up instead of walking the stack and classifying its files again; bounded, and emptied
#: with the session (``forget``) and when the skipped prefixes change.
_direct: dict[tuple[int, int, int], tuple[Any, Any, str, str, CallSite]] = {}
_DIRECT_MAX = 4096


def call_site(depth: int = 1, base: str | None = None) -> CallSite:
    """The call site of the grpc call being made by the frames above ``depth``, its file
    relative to ``base`` when inside it (None: the working directory now). The recording passes
    the directory pytest was invoked from: a test that changes directory keeps its sites, and no
    call pays for asking the system where it is."""
    frame: Any = sys._getframe(depth + 1)
    code, back = frame.f_code, frame.f_back
    back_code = None if back is None else back.f_code
    module = frame.f_globals.get("__name__") or ""
    key = (id(code), frame.f_lasti, id(back_code))
    cached = base is not None  # a session's base, fixed; the working directory may change
    if base is not None:
        seen = _direct.get(key)
        if (
            seen is not None
            and seen[0] is code
            and seen[1] is back_code
            and seen[2] == module
            and seen[3] == base
        ):
            return seen[4]
    else:
        base = _cwd()
    if _kind(code.co_filename, module) == "user" and (
        back_code is None or not _is_interceptor_machinery(back_code.co_filename)
    ):
        site = CallSite(f"{_shown(code.co_filename, base)}:{frame.f_lineno}", None, False)
        if cached:
            if len(_direct) >= _DIRECT_MAX:
                _direct.clear()
            _direct[key] = (code, back_code, module, base, site)
        return site
    return _walk(frame, base)


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return ""


def _walk(frame: Any, base: str) -> CallSite:
    """The site when the calling frame is not the user's own: up to the first user frame, with
    the library frame that made the call beside it."""
    library: str | None = None
    fallback: str | None = None
    while frame is not None:
        code = frame.f_code
        kind = _kind(code.co_filename, frame.f_globals.get("__name__") or "")
        if kind in ("user", "library"):
            back = frame.f_back
            if back is None or not _is_interceptor_machinery(back.f_code.co_filename):
                here = f"{_shown(code.co_filename, base)}:{frame.f_lineno}"
                if kind == "user":
                    return CallSite(here, library, False)
                if library is None:
                    library = here
        elif kind == "stdlib" and fallback is None and not code.co_filename.startswith("<"):
            fallback = f"{_shown(code.co_filename, base)}:{frame.f_lineno}"
        frame = frame.f_back
    if library is not None:
        return CallSite(library, library, False)
    if fallback is not None:
        return CallSite(fallback, None, False)
    return _INTERNAL


def forget() -> None:
    """Drop what the call sites keep between calls (at the end of a pytest session)."""
    _direct.clear()


def relative(path: str) -> str:
    """``path`` relative to the working directory when inside it, else as it is."""
    return _shown(path, _cwd())


def _shown(path: str, base: str) -> str:
    """``path`` relative to ``base`` when inside it, else as it is ("": no base to be in)."""
    return _relative_to(path, base) if base else path


@functools.lru_cache(maxsize=1024)
def _relative_to(path: str, cwd: str) -> str:
    # Memoised: os.path.relpath takes ~7 us, a large share of what recording a call costs.
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
