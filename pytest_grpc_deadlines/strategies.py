"""Hypothesis strategies for timeout cascades, and the conformance helper.

``environs()`` draws environment mappings holding a cascade's variables: absent, empty, valid,
at the edges (0, negative, whitespace-padded, "+5", "1_000", non-ASCII digits ``int()`` accepts)
and, with ``include_invalid=True``, values the reader refuses.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from .cascade import DAGSTER, Cascade, Setting, WholeNumber
from .conformance import assert_cascade_conforms

__all__ = ["assert_cascade_conforms", "environs", "setting_texts"]

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
            raise InvalidArgument(f"setting={setting!r} must be a pytest_grpc_deadlines.Setting")
        if not isinstance(include_invalid, bool):
            raise InvalidArgument(f"include_invalid={include_invalid!r} must be a bool")
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
            raise InvalidArgument(f"cascade={cascade!r} must be a pytest_grpc_deadlines.Cascade")
        if not isinstance(include_invalid, bool):
            raise InvalidArgument(f"include_invalid={include_invalid!r} must be a bool")
        return st.fixed_dictionaries(
            {},
            optional={s.env_var: _setting_texts(s, include_invalid) for s in cascade},
        )

    return st.deferred(build)
