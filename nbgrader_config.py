"""nbgrader configuration for the sockets course.

solutions/ holds the instructor notebooks (nbgrader's "source"), notebooks/ the student versions
nbgrader generates from them (its "release"). Run nbgrader commands from this folder.
"""
import os

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.course_id = "sockets"

# The student stub: the exact text the learner sees in each solution cell.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
# Every cell of a notebook gets this long at most during autograding; the course's own checks
# fail much sooner (they carry deadlines of a few seconds).
c.ExecutePreprocessor.timeout = 30
c.ExecutePreprocessor.interrupt_on_timeout = True
