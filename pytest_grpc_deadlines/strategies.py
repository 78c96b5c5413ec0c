"""Hypothesis strategies for timeout cascades, and the conformance helper.

``environs()`` draws environment mappings holding a cascade's variables: absent, empty, valid,
at the edges (0, negative, whitespace-padded, "+5", "1_000", non-ASCII digits ``int()`` accepts)
and, with ``include_invalid=True``, values the reader refuses.

``deadline_scenarios()`` draws :class:`DeadlineScenario` s: a server delay against a client
timeout, with the verdict the pair of records should get.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._errors import MissingExtraError

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError as exc:
    raise MissingExtraError(
        "pytest_grpc_deadlines.strategies (the Hypothesis strategies and assert_cascade_conforms) "
        f"needs Hypothesis, which could not be imported ({exc}); install the extra: "
        "pip install 'pytest-grpc-deadlines[hypothesis]'"
    ) from exc

from ._checks import check_flag, check_seconds
from ._errors import ArgumentError, CheckError
from .cascade._cascade import DAGSTER, Cascade, Setting, WholeNumber
from .cascade._conformance import mismatches

if TYPE_CHECKING:  # verdicts imports grpc; strategies stays light to import
    from .calls._verdicts import Verdict

__all__ = [
    "DeadlineScenario",
    "StrategyArgumentError",
    "assert_cascade_conforms",
    "deadline_scenarios",
    "environs",
    "setting_texts",
]


class StrategyArgumentError(ArgumentError, InvalidArgument):
    """An argument a strategy or :func:`assert_cascade_conforms` does not accept; Hypothesis
    treats it as its own ``InvalidArgument``."""


_DIGIT_SETS = ("0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "０１２３４５６７８９")
_INVALID_WHOLE = (" ", "1.5", "1e3", "abc", "0x10", "5s", "- 5", "1__0", "∞")
_TIMEOUT_EDGES = (0, -1, -5, 1, 60, 179, 180, 181, 240, 400)
_BYTE_EDGES = (0, -1, -2, 1, 1024, 4_194_304, 100_000_000, 2_147_483_647)
_BYTE_INVALID = (2_147_483_648, 10**12, -2_147_483_649)


def _any_text() -> st.SearchStrategy[str]:
    """Short texts an environment variable can hold (no NUL, no lone surrogate)."""
    return st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6)


def _whole_number_texts(number: int) -> st.SearchStrategy[str]:
    """Texts that ``int()`` reads as ``number``."""
    plain = str(number)
    variants = [st.just(plain), st.just(f" {plain} "), st.just(f"\t{plain}\n")]
    if number >= 0:
        variants.append(st.just(f"+{number}"))
    if abs(number) >= 1000:
        variants.append(st.just(f"{number:_}"))
    for digits in _DIGIT_SETS[1:]:
        variants.append(st.just(plain.translate(str.maketrans("0123456789", digits))))
    return st.one_of(variants)


def setting_texts(setting: Setting, *, include_invalid: bool = False) -> st.SearchStrategy[str]:
    """Texts for one setting's variable (the empty string included where it counts as unset).

    Bad arguments raise ``InvalidArgument`` when the strategy is drawn from, not when called.
    """

    def build() -> st.SearchStrategy[str]:
        if not isinstance(setting, Setting):
            raise StrategyArgumentError(f"setting={setting!r} must be a pytest_grpc_deadlines.Setting")
        if not isinstance(include_invalid, bool):
            raise StrategyArgumentError(f"include_invalid={include_invalid!r} must be a bool")
        return _setting_texts(setting, include_invalid)

    return st.deferred(build)


def _setting_texts(setting: Setting, include_invalid: bool) -> st.SearchStrategy[str]:
    if isinstance(setting.rule, WholeNumber):
        edges: tuple[int, ...] = _BYTE_EDGES if setting.kind == "bytes" else _TIMEOUT_EDGES
        numbers = st.one_of(st.sampled_from(edges), st.integers(min_value=-10, max_value=10**6))
        if include_invalid and setting.kind == "bytes":
            numbers = numbers | st.sampled_from(_BYTE_INVALID)
        texts = numbers.flatmap(_whole_number_texts)
        # "" is a valid text only where it counts as unset (``if os.getenv(X):``); where the
        # reader parses it (``int(os.getenv(X, "5"))``) it is one of the invalid values.
        if include_invalid or not setting.rule.is_set(""):
            texts = st.just("") | texts
        if include_invalid:
            texts = texts | st.sampled_from(_INVALID_WHOLE) | _any_text()
        return texts
    examples = list(getattr(setting.rule, "examples", ()))
    if include_invalid:
        examples += list(getattr(setting.rule, "invalid_examples", ()))
    return st.sampled_from(examples or [""]) | _any_text()


def environs(
    cascade: Cascade = DAGSTER, *, include_invalid: bool = False
) -> st.SearchStrategy[dict[str, str]]:
    """Environment mappings over ``cascade``'s variables (each absent or holding a text)."""

    def build() -> st.SearchStrategy[dict[str, str]]:
        if not isinstance(cascade, Cascade):
            raise StrategyArgumentError(f"cascade={cascade!r} must be a pytest_grpc_deadlines.Cascade")
        if not isinstance(include_invalid, bool):
            raise StrategyArgumentError(f"include_invalid={include_invalid!r} must be a bool")
        return st.fixed_dictionaries(
            {},
            optional={s.env_var: _setting_texts(s, include_invalid) for s in cascade},
        )

    return st.deferred(build)


# deadline scenarios ---------------------------------------------------------------------------

#: The race band's floor and its share of the timeout (DESIGN.md, "Not goals"): grpc's deadline
#: errors arrive a few ms late idle and 24 to 41 ms late with the CPUs oversubscribed.
RACE_BAND_FLOOR = 0.05
RACE_BAND_SHARE = 0.25


@dataclass(frozen=True)
class DeadlineScenario:
    """A server delay against a client timeout, and the verdict the pair of records gets.

    The server waits ``delay`` seconds ``when="before"`` the servicer runs or ``"after"`` it,
    waking when the client goes away if ``honor_cancellation``; the client calls with
    ``timeout``. Within :attr:`band` seconds of the deadline either side of the race may win,
    so :attr:`predicted_verdict` is None there and :attr:`accepted_verdicts` holds every verdict
    the race can give. A client OK comes with a server OK wherever the delay ends.
    """

    delay: float
    timeout: float
    when: Literal["before", "after"]
    honor_cancellation: bool

    def __post_init__(self) -> None:
        for name in ("delay", "timeout"):
            check_seconds(getattr(self, name), name, negative=True)
        check_seconds(self.delay, "delay")
        if self.timeout <= 0:
            raise ArgumentError(f"timeout={self.timeout!r} must be positive")
        if self.when not in ("before", "after"):
            raise ArgumentError(f"when={self.when!r} is not accepted; use 'before' or 'after'")
        check_flag(self.honor_cancellation, "honor_cancellation")

    @property
    def band(self) -> float:
        """Half-width of the race band around the deadline: max(50 ms, 25% of the timeout)."""
        return max(RACE_BAND_FLOOR, RACE_BAND_SHARE * self.timeout)

    @property
    def in_race_band(self) -> bool:
        """Whether the delay ends within :attr:`band` of the deadline (either side may win)."""
        return not (self.delay + self.band < self.timeout or self.delay > self.timeout + self.band)

    @property
    def late_verdict(self) -> Verdict:
        """The verdict when the deadline passes before the delay ends."""
        if self.when == "before" and self.honor_cancellation:
            return "agreed-failure"  # the delay wakes, abandons the call: the servicer never runs
        # "before" ignoring cancellation: the handler sleeps on, then runs the servicer and ends
        # OK; "after": the servicer already ran and the handler ends OK. The client gave up.
        return "disagreement"

    @property
    def predicted_verdict(self) -> Verdict | None:
        """The verdict outside the race band; None inside it."""
        if self.delay + self.band < self.timeout:
            return "agreed-ok"
        if self.delay > self.timeout + self.band:
            return self.late_verdict
        return None

    @property
    def accepted_verdicts(self) -> frozenset[Verdict]:
        """The prediction outside the band. Inside it "agreed-ok", :attr:`late_verdict` and
        "disagreement": a cancellation-aware delay can end just before the server learns of the
        deadline, so the servicer runs and ends OK after the client gave up (seen with the CPUs
        oversubscribed: delay 134 ms, timeout 130 ms)."""
        predicted = self.predicted_verdict
        if predicted is None:
            return frozenset(("agreed-ok", "disagreement", self.late_verdict))
        return frozenset((predicted,))


def _milliseconds(name: str, value: object) -> float:
    try:
        seconds = check_seconds(value, name)
    except ArgumentError as exc:
        raise StrategyArgumentError(str(exc)) from None
    return round(seconds * 1000, 6)  # 0.1 * 1000 is 100.00000000000001: not a reason to skip 100


def deadline_scenarios(
    *, min_timeout: float = 0.1, max_timeout: float = 0.3, max_delay: float = 0.5
) -> st.SearchStrategy[DeadlineScenario]:
    """:class:`DeadlineScenario` s with timeouts in ``[min_timeout, max_timeout]`` and delays in
    ``[0, max_delay]``, whole milliseconds. Each costs up to max(delay, timeout) seconds to run.

    The 100 ms timeout floor is deliberate: with the CPUs oversubscribed a 20 ms call sometimes
    expired before the server saw it. Bad arguments raise ``InvalidArgument`` when drawn from.
    """

    def build() -> st.SearchStrategy[DeadlineScenario]:
        low = math.ceil(_milliseconds("min_timeout", min_timeout))
        high = math.floor(_milliseconds("max_timeout", max_timeout))
        delay = math.floor(_milliseconds("max_delay", max_delay))
        if low < 1:
            raise StrategyArgumentError(f"min_timeout={min_timeout!r} must be at least 0.001 (1 ms)")
        if min_timeout > max_timeout:
            raise StrategyArgumentError(
                f"min_timeout={min_timeout!r} must not exceed max_timeout={max_timeout!r}"
            )
        if low > high:
            raise StrategyArgumentError(
                f"no whole millisecond lies between min_timeout={min_timeout!r} "
                f"and max_timeout={max_timeout!r}"
            )
        return st.builds(
            DeadlineScenario,
            delay=st.integers(0, delay).map(lambda ms: ms / 1000),
            timeout=st.integers(low, high).map(lambda ms: ms / 1000),
            when=st.sampled_from(("before", "after")),
            honor_cancellation=st.booleans(),
        )

    return st.deferred(build)


def assert_cascade_conforms(
    cascade: Cascade,
    resolvers: Mapping[str, Callable[[], object]],
    *,
    max_examples: int = 200,
    include_invalid: bool = True,
) -> None:
    """Check that ``resolvers`` (setting name -> zero-argument function reading ``os.environ``)
    give the same values, and fail in the same places, as ``cascade`` for generated environments.

    Each environment is set in ``os.environ`` for the call and restored after it. On a mismatch
    Hypothesis shrinks to the smallest environment and an ``AssertionError`` names it.
    """
    if not isinstance(cascade, Cascade):
        raise StrategyArgumentError(f"cascade={cascade!r} must be a pytest_grpc_deadlines.Cascade")
    if not isinstance(resolvers, Mapping) or not resolvers:
        raise StrategyArgumentError(
            f"resolvers={resolvers!r} must be a non-empty mapping of setting name to a zero-argument function"
        )
    unknown = [name for name in resolvers if name not in cascade.names]
    if unknown:
        raise StrategyArgumentError(
            f"resolvers name unknown settings {unknown}; the {cascade.name} cascade has: "
            f"{', '.join(cascade.names)}"
        )
    not_callable = [name for name, fn in resolvers.items() if not callable(fn)]
    if not_callable:
        raise StrategyArgumentError(f"resolvers for {not_callable} are not callable")
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        raise StrategyArgumentError(f"max_examples={max_examples!r} must be a positive int")

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(environs(cascade, include_invalid=include_invalid))
    def conforms(environ: dict[str, str]) -> None:
        found = mismatches(cascade, resolvers, environ)
        if found:
            raise CheckError(
                f"the {cascade.name} cascade and the resolvers disagree for environment "
                f"{environ!r}:\n  " + "\n  ".join(found)
            )

    conforms()
