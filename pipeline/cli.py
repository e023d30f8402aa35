"""How a stage runs from the command line: user mistakes become one line, not a traceback."""
import re
import sys
from collections.abc import Callable
from typing import TextIO


class UserError(Exception):
    """A problem the user can fix (bad params, missing input, no network); shown as one line."""


# Control characters (NUL, the ESC that starts a terminal's escape sequences, C1) and
# the marks that reverse the direction of text: printed raw, a review or a file name
# could move the cursor, retitle the window or make another line read differently.
_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def for_terminal(output: str) -> str:
    """The output with every control character but the line break escaped as \\xNN or \\uNNNN."""
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], output)


def say(message: str, stream: TextIO | None = None) -> None:
    """A line to stderr (or stream), escaped where it goes to a terminal."""
    stream = stream or sys.stderr
    print(for_terminal(message) if stream.isatty() else message, file=stream, flush=True)


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except UserError as error:
        say(f"error: {error}")
        sys.exit(2)
    except MemoryError:
        say("error: out of memory (see pipeline/limits.py for the limits on what a run may take)")
        sys.exit(2)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
