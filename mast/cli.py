"""``mast-train`` entry point (the training loop lands with the learners)."""

import sys


def main(argv=None) -> int:
    print("mast-train: not yet available", file=sys.stderr)
    sys.exit(1)
