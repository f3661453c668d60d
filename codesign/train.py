"""``mast-train``: MAST training, optionally with a live hardware cost trace."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from mast.cli import main as mast_main

    return mast_main(argv)


if __name__ == "__main__":
    sys.exit(main())
