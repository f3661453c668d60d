"""User-facing errors and the one CLI wrapper that turns them into one-line messages."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(ValueError):
    """Bad input from a user (flag, file, name). Printed as one line, exit status 2."""


def run_cli(prog: str, main: Callable[[list[str] | None], int | None], argv=None) -> int:
    """Run ``main`` and map bad input to ``prog: error: message`` on stderr, exit 2.

    ``ValueError`` (and its subclasses, e.g. ``UserError``, ``ProfileError``),
    ``FileNotFoundError`` and ``KeyboardInterrupt`` never reach the user as tracebacks.
    """
    try:
        rc = main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    return int(rc or 0)
