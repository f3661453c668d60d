"""User-facing errors and the one CLI boundary that turns them into one-line messages.

The contract of every command (``mast-train``, ``mast-hw ...``, ``mast-sweep``,
``python -m rtl.cosim``):

- exit 0: done;
- exit 2: bad input (a flag, a file, a name, a value out of range, a missing or unwritable
  path, not enough memory for what was asked): one line ``prog: error: <message>`` on
  stderr naming the bad value, flag or file and the valid choices or limits; nothing the
  user had is lost or overwritten;
- exit 1 (``mast-sweep``: a run of the grid failed) and 3 (``mast-train``: a non-finite
  value stopped the run, :data:`mast.nonfinite.EXIT_NONFINITE`) are the commands' own;
- exit 130: interrupted (Ctrl-C);
- anything else: a bug, with its Python traceback.

Bad input is recognised where it is read, not at the top: the code that reads a user's
file or flag converts what can go wrong there (a corrupt checkpoint's ``RuntimeError``, a
truncated npz's ``BadZipFile``) into :class:`UserError` naming the file (:func:`reading`).
The boundary (:func:`run_cli`) maps only :class:`UserError` (and ``ValueError``), the
operating system's refusals of a named path (``OSError`` with a file name: permission
denied, not a directory, no space left) and ``MemoryError`` to the one-line form, so an
unexpected ``RuntimeError``, ``KeyError`` or ``TypeError`` still shows its traceback.
``MAST_TRACEBACK=1`` prints the traceback of a one-line error too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import sys
import traceback
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "ArgumentParser",
    "UserError",
    "USAGE_EXIT",
    "first_line",
    "float_in",
    "int_in",
    "reading",
    "run_cli",
]

USAGE_EXIT = 2
"""Exit status of every bad-input error."""


class UserError(ValueError):
    """Bad input from a user (flag, file, name). Printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are :class:`UserError` (one line, exit 2).

    argparse's own ``error`` prints the usage block and the message; the CLI boundary
    prints only the message (``--help`` still shows the usage).
    """

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see {self.prog} --help)")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (the error quotes the value)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high:,}], got {text!r}")
        return value

    return parse


def float_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``(low, high]`` (the error quotes the value)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low < value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be in ({low:g}, {high:g}], got {text!r}")
        return value

    return parse


def first_line(e: BaseException) -> str:
    """The first non-empty line of ``e``'s message (its type name when it has none)."""
    if isinstance(e, KeyError) and e.args:
        return f"missing entry {e.args[0]!r}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    RuntimeError,
)


@contextmanager
def reading(
    path: str | Path, what: str, errors: tuple[type[BaseException], ...] = _READ_ERRORS
) -> Iterator[None]:
    """Turn ``errors`` raised while reading the user's file ``path`` into a :class:`UserError`.

    Use it around the few lines that parse or apply one file the user passed in (a
    checkpoint, an npz, a CSV), never around code that merely uses the result: a bug there
    must keep its traceback. The message reads ``<what> '<path>' is unreadable or
    malformed: <first line of the cause>``; a :class:`UserError` passes through unchanged.
    """
    try:
        yield
    except UserError:
        raise
    except errors as e:
        if isinstance(e, FileNotFoundError) and not Path(path).exists():
            raise UserError(f"{what} {str(path)!r} does not exist") from e
        raise UserError(f"{what} {str(path)!r} is unreadable or malformed: {first_line(e)}") from e


def _message(e: BaseException) -> str | None:
    """The one-line message of an expected failure, ``None`` for a bug."""
    if isinstance(e, ValueError | FileNotFoundError | FileExistsError):
        return first_line(e)
    if isinstance(e, OSError) and e.filename is not None:
        names = " -> ".join(repr(str(f)) for f in (e.filename, e.filename2) if f is not None)
        return f"{e.strerror or type(e).__name__}: {names}"
    if isinstance(e, MemoryError):
        return f"out of memory: {first_line(e)}" if str(e) else "out of memory"
    return None


def run_cli(prog: str, main: Callable[[list[str] | None], int | None], argv=None) -> int:
    """Run ``main`` and map bad input to ``prog: error: message`` on stderr, exit 2.

    ``UserError`` and other ``ValueError``s (``ProfileError``, ...), ``FileNotFoundError``,
    ``FileExistsError``, any ``OSError`` that names a path, and ``MemoryError`` never reach
    the user as tracebacks; ``KeyboardInterrupt`` exits 130. Everything else propagates.
    """
    try:
        rc = main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (``| head``): stop quietly, as Unix tools do
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, MemoryError) as e:
        msg = _message(e)
        if msg is None:
            raise
        if os.environ.get("MAST_TRACEBACK"):
            traceback.print_exc()
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return USAGE_EXIT
    return int(rc or 0)
