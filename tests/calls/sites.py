"""Where a test made a call, as the plugin reports it in a record's ``site``."""

from __future__ import annotations

import os
import sys


def line() -> int:
    """The caller's line: call it on the line that makes the RPC."""
    return sys._getframe(1).f_lineno


def site(line: int) -> str:
    """``file:line`` in the calling test module, relative to the working directory."""
    return f"{os.path.relpath(sys._getframe(1).f_code.co_filename)}:{line}"
