"""Run ``mast-train`` and SIGKILL it at a named point of one of its file writes.

Usage: ``python tests/crash_driver.py PATTERN NTH PHASE -- MAST_TRAIN_ARGS...``

The process kills itself (``SIGKILL``, as ``kill -9``) at the ``NTH`` (1-based) atomic
write whose file name matches the glob ``PATTERN``:

- ``mid``: the temporary file is cut to half its bytes and the target is untouched, as if
  the process died while writing it;
- ``before``: the temporary file is complete but not yet renamed;
- ``after``: the target has just been replaced (the next step never runs).

Only :func:`mast.atomicio._replace` is wrapped; everything else is the real program.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys


def main() -> int:
    pattern, nth, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    assert sys.argv[4] == "--" and phase in ("mid", "before", "after"), sys.argv
    from mast import atomicio

    real = atomicio._replace
    seen = 0

    def replace(tmp, path):
        nonlocal seen
        if fnmatch.fnmatch(os.path.basename(path), pattern):
            seen += 1
            if seen == nth:
                if phase == "mid":
                    os.truncate(tmp, os.path.getsize(tmp) // 2)
                if phase == "after":
                    real(tmp, path)
                os.kill(os.getpid(), signal.SIGKILL)
        real(tmp, path)

    atomicio._replace = replace
    from codesign.train import main as train_main

    return train_main(sys.argv[5:])


if __name__ == "__main__":
    raise SystemExit(main())
