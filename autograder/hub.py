"""What the course changes in nbgrader on a class's hub (deploy/jupyterhub/nbgrader_config.py).

nbgrader's own Autograde (Formgrader's button, `nbgrader autograde`) runs student code without a
sandbox, with the rights of whoever presses it; its Generate feedback renders the hidden tests into
the page a student fetches. On the hub both are replaced by the course's grader, so the preprocessor
below stops them before any submission is read, and says what to run instead.
"""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

__all__ = ["RefuseOnTheHub", "REFUSAL"]

REFUSAL = ("on this hub, grade with the course's sandboxed grader, not nbgrader's: "
           "`python -m autograder grade ASSIGNMENT --submitted submitted/ --feedback feedback/ --db gradebook.db`, "
           "then `nbgrader release_feedback ASSIGNMENT` (nbgrader's Autograde would run student code unsandboxed "
           "with your rights; its feedback shows the hidden tests)")


class RefuseOnTheHub(Preprocessor):
    """Refuses to run: nbgrader's Autograde and Generate feedback are the course grader's job here."""

    enabled = Bool(True)  # nbconvert skips a preprocessor that is not enabled

    def preprocess(self, nb, resources):
        raise RuntimeError(REFUSAL)


# ----------------------------------------------------------------------------------------------
# A Jupyter server extension that takes Formgrader's executing and rendering routes away
# ----------------------------------------------------------------------------------------------
# nbgrader's Formgrader builds its Autograde from the server extension's own configuration, which
# does not read nbgrader_config.py's Autograde settings, so the preprocessor above cannot stop the
# button. This extension registers the routes first (extensions load in name order, and the first
# matching route wins): the buttons answer with the refusal, and nothing of the submission is run.
REFUSED_ROUTES = [
    r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde",  # runs the submission unsandboxed
    r"/formgrader/api/assignment/([^/]+)/generate_feedback",  # renders hidden tests into feedback
    r"/formgrader/api/assignment/([^/]+)/([^/]+)/generate_feedback",
    r"/formgrader/submission/([^/]+)",  # renders the student's notebook (their HTML) in the staff's browser
]


def _jupyter_server_extension_points():
    return [{"module": "autograder.hub"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    class Refused(JupyterHandler):
        def _refuse(self, *args):
            if self.current_user is None:
                raise web.HTTPError(403)
            self.set_header("Content-Type", "application/json")
            self.finish({"success": False, "error": REFUSAL, "log": REFUSAL})

        get = post = _refuse

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, route), Refused) for route in REFUSED_ROUTES])
    serverapp.log.info("autograder.hub: Formgrader's Autograde, Generate feedback and submission view are "
                       "refused on this hub (grade with python -m autograder grade)")
