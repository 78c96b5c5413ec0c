"""Where an imported module holds a copy of a cascade setting, and patching every copy.

A program that reads its settings once, at import, keeps them in module constants
(:class:`~pytest_grpc_deadlines.Binding`) and in the default arguments of functions whose default
expression names such a constant (``def f(timeout: int = DEFAULT_GRPC_TIMEOUT)``). Both are
found here, from the module's own source, and set to a test's values while its settings are in
force. What cannot be set (a default of a lambda made at import) is reported, so the plugin can
say which code keeps the old value. A function made inside another one needs nothing: it
evaluates its defaults when that one runs, from the module's attribute of the moment.

Pure Python: ``ast`` over the module's source, no grpc.
"""

from __future__ import annotations

import ast
import inspect
import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from types import FunctionType, ModuleType

__all__ = ["MISSING", "Capture", "Patches", "captures"]

#: The old value of an attribute a module did not have.
MISSING: object = object()


@dataclass(frozen=True)
class Capture:
    """A default argument of ``module.qualname`` that names the module attribute ``name``."""

    module: str
    qualname: str
    parameter: str
    name: str
    #: False where no patch reaches it (a lambda made at import): the reason says why.
    patchable: bool = True
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.module}.{self.qualname}({self.parameter}={self.name})"


def _source_tree(module: ModuleType) -> ast.Module | None:
    try:
        return ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return None


def _defaults(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Iterator[tuple[str, ast.expr]]:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True):
        yield arg.arg, default
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if kw_default is not None:
            yield arg.arg, kw_default


class _Finder(ast.NodeVisitor):
    """Every default argument in a module's source that is a plain name, by where it is."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.found: list[Capture] = []
        self._path: list[str] = []
        self._in_function = 0

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A function made inside another one evaluates its defaults each time that one runs,
        # reading the module's attribute then: it follows the patched attribute by itself.
        if self._in_function:
            return
        qualname = ".".join([*self._path, node.name])
        for parameter, default in _defaults(node):
            if isinstance(default, ast.Name):
                self.found.append(Capture(self.module, qualname, parameter, default.id))
        self._path.append(node.name)
        self._in_function += 1
        self.generic_visit(node)
        self._in_function -= 1
        self._path.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._path.append(node.name)
        self.generic_visit(node)
        self._path.pop()

    def visit_Lambda(self, node: ast.Lambda) -> None:
        if self._in_function:
            return
        for parameter, default in _defaults(node):
            if isinstance(default, ast.Name):
                where = ".".join([*self._path, "<lambda>"])
                self.found.append(Capture(self.module, where, parameter, default.id, False, "a lambda"))
        self.generic_visit(node)


#: Per module object: its source is read and parsed once (a re-imported module is parsed again).
_cache: weakref.WeakKeyDictionary[ModuleType, tuple[Capture, ...]] = weakref.WeakKeyDictionary()


def captures(module: ModuleType, names: frozenset[str]) -> tuple[Capture, ...]:
    """The default arguments in ``module``'s source whose default expression is one of ``names``."""
    if module not in _cache:
        tree = _source_tree(module)
        finder = _Finder(module.__name__)
        if tree is not None:
            finder.visit(tree)
        _cache[module] = tuple(finder.found)
    return tuple(capture for capture in _cache[module] if capture.name in names)


def _function(module: ModuleType, qualname: str) -> FunctionType | None:
    target: object = module
    for part in qualname.split("."):
        holder = target
        target = (
            inspect.getattr_static(holder, part, None)
            if isinstance(holder, type)
            else getattr(holder, part, None)
        )
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
        if target is None:
            return None
    target = inspect.unwrap(target) if callable(target) else target
    return target if isinstance(target, FunctionType) else None


class Patches:
    """Module attributes and default arguments set to new values, each put back by :meth:`undo`."""

    def __init__(self) -> None:
        self._undo: list[tuple[object, str, object]] = []

    def set_attribute(self, module: ModuleType, attribute: str, value: object) -> object:
        """Set ``module.attribute``; returns the old value (``MISSING`` when it had none)."""
        old = getattr(module, attribute, MISSING)
        self._undo.append((module, attribute, old))
        setattr(module, attribute, value)
        return old

    def set_default(self, capture: Capture, old: object, new: object) -> bool:
        """Set the default of ``capture``'s parameter from ``old`` to ``new``; False when the
        function is not found or its default is not ``old`` any more (someone else changed it)."""
        module = sys.modules.get(capture.module)
        function = None if module is None else _function(module, capture.qualname)
        if function is None:
            return False
        code = function.__code__
        positional = code.co_varnames[: code.co_posonlyargcount + code.co_argcount]
        defaults = function.__defaults__ or ()
        first = len(positional) - len(defaults)
        if capture.parameter in positional[first:]:
            index = positional.index(capture.parameter) - first
            if defaults[index] is not old and defaults[index] != old:
                return False
            self._undo.append((function, "__defaults__", defaults))
            function.__defaults__ = (*defaults[:index], new, *defaults[index + 1 :])
            return True
        kwdefaults = function.__kwdefaults__ or {}
        if capture.parameter in kwdefaults:
            if kwdefaults[capture.parameter] != old:
                return False
            self._undo.append((function, "__kwdefaults__", dict(kwdefaults)))
            function.__kwdefaults__ = {**kwdefaults, capture.parameter: new}
            return True
        return False

    def undo(self) -> None:
        """Put back everything set, newest first."""
        while self._undo:
            owner, attribute, old = self._undo.pop()
            if old is MISSING:
                if hasattr(owner, attribute):
                    delattr(owner, attribute)
            else:
                setattr(owner, attribute, old)
