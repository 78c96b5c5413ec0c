"""What ``pytest_configure`` settles for the run and every other part of the plugin reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import pytest

if TYPE_CHECKING:  # parsed only when a run sets timeouts; not loaded at start-up
    from ..cascade._cascade import Cascade
    from ..cascade._overrides import Layer

__all__ = ["STATE", "State", "configured_cascade"]


class State(NamedTuple):
    """The run's cascade and the layers (ini ``grpc_timeouts``, ``--grpc-timeout``) under markers.

    ``configured`` is None for the default, Dagster's cascade, which is imported only when a
    test needs it: a run that never sets a timeout does not load the cascade model. (A named
    tuple, as the other things made when the plugin loads: cheaper to define than a dataclass.)
    """

    configured: Cascade | None
    base_layers: tuple[Layer, ...]

    @property
    def cascade(self) -> Cascade:
        if self.configured is not None:
            return self.configured
        from ..cascade._cascade import DAGSTER

        return DAGSTER


STATE = pytest.StashKey[State]()


def configured_cascade(config: pytest.Config) -> Cascade:
    """The cascade this run uses (ini ``grpc_deadlines_cascade``, else Dagster's)."""
    return config.stash[STATE].cascade
