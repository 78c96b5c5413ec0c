"""The call recording, installed when grpc is first imported.

Loading the plugin must cost a run that never uses grpc nothing of grpc's: this module imports
neither grpc, the recording nor ``wrapt`` (whose import pulls in asyncio). :func:`install`
installs the recording at once when grpc is already imported, and otherwise right after grpc's
package has run (an import finder that lets grpc load as usual and then calls back);
:func:`uninstall` undoes one install, whether or not grpc came.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

__all__ = ["install", "uninstall"]

_lock = threading.RLock()
#: installs asked for, and how many of them the recording has carried out
_wanted = 0
_done = 0
_hooked = False


def install() -> None:
    """Record calls from when grpc is imported (now, when it already is)."""
    global _wanted, _hooked
    with _lock:
        _wanted += 1
        if "grpc" in sys.modules:
            _catch_up()
        elif not _hooked:
            _hooked = True
            sys.meta_path.insert(0, _WATCH)


class _Watch(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for ``grpc``, it asks the other finders and has the loader call
    back once grpc's package has run (``grpc.aio`` included: grpc imports it)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "grpc":
            return None
        # Still watching until grpc has run: ``importlib.util.find_spec("grpc")`` (some code
        # asks whether grpc is installed) finds a spec without loading it.
        spec: importlib.machinery.ModuleSpec | None = None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                break
        if spec is None:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = _Notifying(loader)
        return spec


class _Notifying(importlib.abc.Loader):
    """grpc's own loader, then the install."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # grpc's own loader from the start, as without the plugin; the callback comes after
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _unhook()
        with _lock:
            _catch_up()

    def __getattr__(self, name: str) -> object:  # the rest of the loader's API is grpc's own
        return getattr(self._loader, name)


_WATCH = _Watch()


def _unhook() -> None:
    global _hooked
    with _lock:
        _hooked = False
        if _WATCH in sys.meta_path:
            sys.meta_path.remove(_WATCH)


def _catch_up() -> None:
    global _done
    from . import _recording

    while _done < _wanted:
        _recording.install()
        _done += 1


def uninstall() -> None:
    """Undo one :func:`install`."""
    global _wanted, _done
    with _lock:
        if _wanted == 0:
            return
        _wanted -= 1
        if _wanted == 0:
            _unhook()
        if _done > _wanted:
            from . import _recording

            _recording.uninstall()
            _done -= 1
