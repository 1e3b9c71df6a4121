"""The helper library of the sockets course.

Notebooks import what a lesson needs from one module per concept: `course.udp`, `course.tcp`,
`course.nat`, `course.kernel`, `course.framing`... This package itself exposes only the three kinds
of error a learner meets, each named for whose fault it is:

- `YourCodeError`: the learner's code did something other than what the exercise asks;
- `PeerError`: a reference peer of the course misbehaved (report it: that is our bug);
- `SetupError`: the machine or the call is not set up as the course needs (a non-loopback
  address, no free port, a missing permission).

Every message is one sentence with the values in it and what to check.
"""
from course.errors import CourseError, PeerError, SetupError, YourCodeError, install_notebook_messages

install_notebook_messages()

__all__ = ["CourseError", "PeerError", "SetupError", "YourCodeError"]
__version__ = "0.3.1"
