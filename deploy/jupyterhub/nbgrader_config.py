"""nbgrader for everybody on the class's hub (installed into the class's environment, etc/jupyter):
the exchange every account hands assignments in and out through, and the course's id.

Formgrader's own Autograde and Generate feedback are switched off here (autograder.hub): nbgrader's
Autograde runs student code without a sandbox and with the instructor's rights, and its feedback
shows the hidden tests (nbgrader #917, #1363). On the hub the instructor grades with the course's
grader instead: `python -m autograder grade ASSIGNMENT --submitted submitted/ --feedback feedback/`,
then `nbgrader release_feedback ASSIGNMENT`.
"""
import os

c = get_config()  # noqa: F821

c.Exchange.root = os.path.join(os.environ.get("CLASS_DIR", "/srv/sockets-class"), "exchange")
c.CourseDirectory.course_id = "sockets"
c.Autograde.sanitize_preprocessors = ["autograder.hub.RefuseOnTheHub"]
c.GenerateFeedback.preprocessors = ["autograder.hub.RefuseOnTheHub"]
