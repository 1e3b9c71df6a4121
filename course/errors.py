
__all__ = [
    "CourseError",
    "YourCodeError",
    "PeerError",
    "SetupError",
    "stub_message",
    "install_notebook_messages",
]
"""The few exceptions the course raises, named for whose fault they are (the trio habit).

`YourCodeError` subclasses AssertionError so that a failed check reads as a failed test in
nbgrader and pytest alike; the other two are plain errors, because they are not the learner's.
"""


class CourseError(Exception):
    """Base of every error the course raises on purpose."""


class YourCodeError(CourseError, AssertionError):
    """The learner's code did not do what the exercise asks; the message says what to check."""


class PeerError(CourseError):
    """A reference peer of the course failed; this is the course's bug, not the learner's."""


class SetupError(CourseError):
    """The environment or the call is not what the course needs (address, permission, port)."""


# ----------------------------------------------------------------------------------------------
# How errors look in a notebook: one line, no traceback through the library
# ----------------------------------------------------------------------------------------------
def _is_cell(filename: str) -> bool:
    """True for code typed in a notebook cell (ipykernel names cells /tmp/ipykernel_PID/HASH.py)."""
    return "ipykernel_" in filename or filename.startswith("<ipython-input")


def _cell_frames(tb):
    while tb is not None:
        if _is_cell(tb.tb_frame.f_code.co_filename):
            yield tb
        tb = tb.tb_next


def _where_in_your_code(exc: BaseException | None) -> str:
    """' (in your_function, line N: `source`)' for the innermost notebook-cell frame of `exc`."""
    if exc is None or exc.__traceback__ is None:
        return ""
    frames = list(_cell_frames(exc.__traceback__))
    if not frames:
        return ""
    tb = frames[-1]
    import linecache

    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip()
    name = tb.tb_frame.f_code.co_qualname
    return f" [raised in {name}, line {tb.tb_lineno}: `{line[:100]}`]" if line else f" [raised in {name}]"


def _render_your_code_error(self) -> list[str]:
    """IPython shows a YourCodeError as its one sentence (plus where your code raised, when the
    check's failure comes from an exception in it), not as a traceback through the course's checks."""
    cause = self.__cause__ if self.__cause__ is not None else None
    where = _where_in_your_code(cause) if cause is not None else ""
    return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}{where}"]


YourCodeError._render_traceback_ = _render_your_code_error


def stub_message(exc: BaseException) -> str | None:
    """The one line for a NotImplementedError raised by a blank exercise stub in a notebook cell
    (None when it was raised elsewhere, or says something of its own)."""
    if not isinstance(exc, NotImplementedError) or str(exc) or exc.__traceback__ is None:
        return None
    frames = list(_cell_frames(exc.__traceback__))
    if not frames or frames[-1].tb_next is not None:
        return None  # the innermost frame is not a notebook cell: the library raised it
    code = frames[-1].tb_frame.f_code
    if code.co_name == "<module>":
        return "NotImplementedError: this cell raises NotImplementedError itself: replace that line with your code"
    return (f"NotImplementedError: `{code.co_qualname}` is still the blank stub: write it in its cell above, "
            f"run that cell, then run this one again")


def _show_stub(shell, etype, value, tb, tb_offset=None):
    message = stub_message(value)
    if message is not None:
        value._render_traceback_ = lambda: [message]
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def install_notebook_messages() -> None:
    """In a Jupyter kernel, show a blank stub's NotImplementedError as one line that says what to do.
    The cell still ends in an error (nbgrader and the grader score it 0): only what is shown is shorter."""
    import sys

    if "IPython" not in sys.modules:
        return
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:  # noqa: BLE001 - no shell: nothing to install
        return
    if shell is None or not hasattr(shell, "set_custom_exc") or NotImplementedError in getattr(shell, "custom_exceptions", ()):
        return
    shell.set_custom_exc((NotImplementedError,), _show_stub)
