"""`python -m course`: see course/cli.py. Ctrl-C is taken over before anything else is imported, so
that it ends the program at once and quietly (no traceback) even while a lesson module loads."""
import signal
import sys


def _quit_quietly(signum, frame):
    raise SystemExit(130)


signal.signal(signal.SIGINT, _quit_quietly)

from course.cli import main  # noqa: E402 - after the handler on purpose

sys.exit(main())
