"""How a setting's variable is read and written, and the rules that derive defaults.

Each :class:`Setting` declares its own :class:`ValueRule` (when the variable counts as set, how
its text parses, how a marker value is written) because programs read their variables
differently: Dagster's timeouts treat an empty string as unset, its restart interval parses it
(and fails), and its exception-logging switch is on for any non-empty text.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._errors import ArgumentError, ArgumentTypeError

#: The largest float: ints beyond it do not round-trip through float().
_FLOAT_MAX = sys.float_info.max

#: What a reader's parse raises for text it refuses: ``float()`` and ``int()`` raise ValueError,
#: and arithmetic or ``timedelta`` on what they read may raise OverflowError.
PARSE_ERRORS = (ValueError, OverflowError)

__all__ = [
    "PARSE_ERRORS",
    "Flag",
    "Max",
    "Milliseconds",
    "OrDefault",
    "Ref",
    "Rule",
    "Seconds",
    "Text",
    "ValueRule",
    "WholeNumber",
]


class ValueRule:
    """How one setting's variable is read and written. Subclass it for other rules."""

    #: Words completing "the value must be ...", used in error messages.
    accepts: str = "a value"

    def is_set(self, raw: str | None) -> bool:
        """Whether the variable's text counts as set (otherwise the default applies)."""
        return raw is not None

    def parse(self, raw: str) -> object:
        """Turn the variable's text into a value; raise ``ValueError`` (or ``OverflowError``) as
        the reader would."""
        return raw

    #: Texts the strategies draw for this rule (valid ones, and ones the reader refuses).
    examples: tuple[str, ...] = ()
    invalid_examples: tuple[str, ...] = ()

    def refusal(self, exc: Exception) -> str:
        """What the reader does with text that does not parse ("" for the cascade's default)."""
        return ""

    def write(self, value: object) -> str | None:
        """Turn a marker value into the variable's text (None removes the variable); raise
        ``TypeError`` or ``ValueError`` for a value the rule does not take."""
        if isinstance(value, str):
            return value
        raise ArgumentTypeError(f"{value!r} is {_a(type(value).__name__)}; accepted: {self.accepts}")


@dataclass(frozen=True)
class _Number(ValueRule):
    """A number read with ``reader``; ``empty_is_unset`` mirrors ``if os.getenv(X): ...``."""

    empty_is_unset: bool = True
    reader: str = ""
    #: What the reader does with text that does not parse, when it is not the reader's own
    #: ValueError (e.g. a click option's usage error); ``{exc}`` is the parse error, ``{kind}``
    #: its type's name.
    refuses: str = ""
    #: Completes "a ..., as READER reads it" in messages.
    noun = "number"

    def refusal(self, exc: Exception) -> str:
        return self.refuses.format(exc=exc, kind=type(exc).__name__)

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return f"a {self.noun}, as {self.reader} reads it"

    def is_set(self, raw: str | None) -> bool:
        if self.empty_is_unset:
            return bool(raw)
        return raw is not None


@dataclass(frozen=True)
class WholeNumber(_Number):
    """Python's ``int(text)``: " 7 ", "+5", "1_000" and non-ASCII digits are accepted.

    ``empty_is_unset`` mirrors ``if os.getenv(X): return int(...)`` (Dagster's timeouts); when
    false, an empty string is parsed and fails, as ``int(os.getenv(X, "5"))`` does.
    """

    reader: str = "int()"
    noun = "whole number"

    def parse(self, raw: str) -> object:
        return int(raw)

    def write(self, value: object) -> str | None:
        if isinstance(value, str):
            return value
        value = _number(
            value,
            "an int, a float with a whole value, a str written to the variable verbatim, or None to "
            "remove it",
        )
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise ArgumentError(
                    f"{value!r} is not {self.accepts}; pass it as a string ('{value!r}') "
                    "to write it to the variable verbatim on purpose"
                )
            value = int(value)
        try:
            return str(value)
        except ValueError:  # beyond sys.get_int_max_str_digits(): int() could not read it back
            raise ArgumentError(
                f"an int of {value.bit_length()} bits has more digits than {self.reader} reads"
            ) from None


@dataclass(frozen=True)
class Seconds(_Number):
    """Python's ``float(text)``: seconds with a fraction ("1.5", "2e3", " 7 ", "1_000"; also
    "inf" and "nan", which :func:`~pytest_grpc_deadlines.check` then flags).

    ``empty_is_unset`` as for :class:`WholeNumber`: ``if os.getenv(X): return float(...)``.
    """

    reader: str = "float()"
    noun = "number of seconds"
    examples: tuple[str, ...] = ("0.5", "1.5", "30", " 2 ", "1e3", "0.001")
    invalid_examples: tuple[str, ...] = ("abc", "1.2.3", "1,5", "30s")

    def parse(self, raw: str) -> object:
        return float(raw)

    def write(self, value: object) -> str | None:
        if isinstance(value, str):
            return value
        value = _number(
            value, "an int or a float, a str written to the variable verbatim, or None to remove it"
        )
        if isinstance(value, int) and abs(value) > _FLOAT_MAX:
            raise ArgumentError(f"an int of {value.bit_length()} bits is beyond {self.reader}'s range")
        return repr(float(value))


@dataclass(frozen=True)
class Milliseconds(_Number):
    """A variable in milliseconds, its value in seconds (as every other timeout of the plugin).

    ``whole`` reads the text with ``int()`` ("1500"; the OpenTelemetry specification's integer
    milliseconds), else with ``float()`` ("1500.5"). The resolved value is the text / 1000, a
    float; a marker gives seconds (``traces=1.5`` writes "1500"). ``empty_is_unset`` as for
    :class:`WholeNumber`.
    """

    whole: bool = True
    reader: str = ""
    noun = "number of milliseconds"
    examples: tuple[str, ...] = ("500", "1500", "10000", " 250 ", "1")
    invalid_examples: tuple[str, ...] = ("abc", "1.5s", "1,5", "10ms")

    @property
    def accepts(self) -> str:  # type: ignore[override]
        reader = self.reader or ("int()" if self.whole else "float()")
        return f"a {self.noun}, as {reader} reads it"

    def parse(self, raw: str) -> object:
        return (int(raw) if self.whole else float(raw)) / 1000

    def write(self, value: object) -> str | None:
        if isinstance(value, str):
            return value
        value = _number(
            value,
            "seconds as an int or a float (written as milliseconds), a str written to the variable "
            "verbatim, or None to remove it",
        )
        if isinstance(value, int) and abs(value) > _FLOAT_MAX / 1000:
            raise ArgumentError(f"an int of {value.bit_length()} bits is beyond what float() holds")
        millis = float(value) * 1000
        if not math.isfinite(millis):
            raise ArgumentError(f"{value!r} seconds is not {self.accepts}")
        whole = round(millis)
        if abs(millis - whole) <= 1e-6 * max(1.0, abs(millis)):  # 1.001 s is 1000.9999999999999 ms
            millis = float(whole)
        if not self.whole:
            return repr(millis)
        if not millis.is_integer():
            nearest = max(whole, 1) if value > 0 else whole
            raise ArgumentError(
                f"{value!r} seconds is {millis:g} ms, not {self.accepts}; give whole milliseconds "
                f"(e.g. {nearest / 1000!r}) or a str written verbatim"
            )
        return str(whole)


@dataclass(frozen=True)
class OrDefault(ValueRule):
    """``value or default``: the inner rule's value, unless it is zero (or otherwise false),
    when the setting's default applies, as ``float(os.environ[X]) or DEFAULT`` reads it.

    Text the inner rule cannot parse still counts as set, so its error shows. Whether an empty
    string is unset or an error is the inner rule's ``empty_is_unset``:
    ``OrDefault(Seconds(empty_is_unset=False))`` is OpenTelemetry's per-signal timeout, where
    "" fails and "0" falls through to the general timeout.
    """

    inner: ValueRule = field(default_factory=lambda: Seconds(empty_is_unset=False))

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return f"{self.inner.accepts} (0 means the default)"

    @property
    def examples(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self.inner.examples, "0")

    @property
    def invalid_examples(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inner.invalid_examples

    def is_set(self, raw: str | None) -> bool:
        if not self.inner.is_set(raw):
            return False
        assert raw is not None
        try:
            return bool(self.inner.parse(raw))
        except PARSE_ERRORS:
            return True  # set, and its error shows

    def parse(self, raw: str) -> object:
        return self.inner.parse(raw)

    def refusal(self, exc: Exception) -> str:
        return self.inner.refusal(exc)

    def write(self, value: object) -> str | None:
        return self.inner.write(value)


@dataclass(frozen=True)
class Ref:
    """A default that is another (earlier) setting's value."""

    name: str

    @property
    def depends_on(self) -> tuple[str, ...]:
        return (self.name,)

    def evaluate(self, values: Mapping[str, object]) -> object:
        return values[self.name]

    def describe(self, values: Mapping[str, object]) -> str:
        return f"{self.name}={values[self.name]!r}"


@dataclass(frozen=True, init=False)
class Max:
    """A default that is the largest of constants and earlier settings: ``Max(180, "default")``."""

    terms: tuple[int | str, ...]

    def __init__(self, *terms: int | str) -> None:
        if not terms:
            raise ArgumentError("Max() needs at least one term")
        object.__setattr__(self, "terms", terms)

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if isinstance(t, str))

    def term_values(self, values: Mapping[str, object]) -> list[tuple[int | str, int]]:
        out: list[tuple[int | str, int]] = []
        for term in self.terms:
            value = values[term] if isinstance(term, str) else term
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentTypeError(
                    f"Max() takes whole numbers: term {term!r} is {value!r}; give the setting a "
                    "rule that parses to int, or a default rule of your own"
                )
            out.append((term, value))
        return out

    def evaluate(self, values: Mapping[str, object]) -> object:
        return max(v for _, v in self.term_values(values))

    def describe(self, values: Mapping[str, object]) -> str:
        parts = [f"{t}={v!r}" if isinstance(t, str) else repr(v) for t, v in self.term_values(values)]
        return f"max({', '.join(parts)})"


@dataclass(frozen=True)
class Flag(ValueRule):
    """On for any non-empty text, as ``if not os.getenv(X): return`` reads it ("0" is on too).

    A marker's True writes "1"; False removes the variable, the only way to turn it off.
    """

    accepts = "any text (non-empty is on)"
    examples = ("1", "0", "false", "true", "no", " ")

    def is_set(self, raw: str | None) -> bool:
        return bool(raw)

    def parse(self, raw: str) -> object:
        return True

    def write(self, value: object) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "1" if value else None
        raise ArgumentTypeError(
            f"{value!r} is {_a(type(value).__name__)}; accepted: True (writes '1'), False (removes "
            "the variable: any text, '0' included, turns it on), or a str written verbatim"
        )


@dataclass(frozen=True)
class Text(ValueRule):
    """Text taken as it is; an empty string counts as unset (as click reads an env var)."""

    accepts = "any text"
    examples = ("/tmp/grpc.sock", "localhost", "127.0.0.1", "0.0.0.0", "::1")

    def is_set(self, raw: str | None) -> bool:
        return bool(raw)


#: A default computed from earlier settings.
Rule = Ref | Max


def _number(value: object, accepted: str) -> int | float:
    """A marker value that is an int or a float (a bool is neither), else refused saying what is
    ``accepted``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{value!r} is {_a(type(value).__name__)}; accepted: {accepted}")
    return value


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "a bool", "an int"."""
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"
