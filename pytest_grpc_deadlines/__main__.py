"""``python -m pytest_grpc_deadlines explain`` and ``python -m pytest_grpc_deadlines merge``."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["merge"]:
        from .calls._merge import main as merge

        return merge(args[1:])
    from .cascade._explain import main as explain

    return explain(args)


if __name__ == "__main__":
    sys.exit(main())
