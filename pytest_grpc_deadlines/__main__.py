"""``python -m pytest_grpc_deadlines explain``."""

from __future__ import annotations

import sys

from .cascade._explain import main

if __name__ == "__main__":
    sys.exit(main())
