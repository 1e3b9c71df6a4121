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
