"""How a stage runs from the command line: user mistakes become one line, not a traceback."""
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (bad params, missing input, no network); shown as one line."""


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except MemoryError:
        print("error: out of memory (see pipeline/limits.py for the limits on what a run may take)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
