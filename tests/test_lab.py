"""README's first command, `make lab`, serves JupyterLab with the course on it."""
import os
import re
import signal
import subprocess
import urllib.request

import pytest

from conftest import REPO
from course.deadline import Deadline, wait_for


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as page:
            return page.read().decode() if page.status == 200 else None
    except OSError:
        return None


@pytest.mark.timeout(90)
def test_make_lab_serves_the_course(tmp_path):
    work = tmp_path / "work"
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"WORK={work}", "LAB_ARGS=--no-browser --IdentityProvider.token=course-test"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = Deadline(60)
        url = None
        seen = []
        while url is None and not deadline.expired():
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)/lab", line)
            url = m.group(1) if m else None
        assert url, "JupyterLab printed no URL; its output was:\n" + "".join(seen[-20:])
        # Jupyter prints its URL a moment before it accepts connections: wait for it, bounded.
        page = wait_for(lambda: fetch(f"{url}/lab?token=course-test"), 20, f"JupyterLab at {url} never answered")
        assert "JupyterLab" in page
        with urllib.request.urlopen(f"{url}/api/contents?token=course-test", timeout=10) as listing:
            names = {item["name"] for item in __import__("json").load(listing)["content"]}
        expected = {p.name for p in (REPO / "notebooks").iterdir() if p.is_dir()} if (REPO / "notebooks").is_dir() else set()
        assert expected <= names, f"the lab does not show the course's notebooks: {expected - names}"
        # nbgrader is off for a learner alone: no Formgrader (it would show solutions), no
        # Assignments tab (no exchange), and no "No nbgrader_config.py" in the log
        assert fetch(f"{url}/formgrader?token=course-test") is None, "make lab serves nbgrader's Formgrader"
        assert '"@jupyter/nbgrader": true' in page.replace("\\", "") or "@jupyter/nbgrader" in page, \
            "nbgrader's lab extension is not disabled in the page config"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    log = "".join(seen) + (proc.stdout.read() or "")
    nbgrader_lines = [line for line in log.splitlines()
                      if ("nbgrader" in line.lower() or "formgrader" in line.lower()) and "404 GET /formgrader" not in line]
    assert not nbgrader_lines, "nbgrader's server extensions run under make lab: " + "\n".join(nbgrader_lines)[:800]


def test_the_learners_copy_survives_an_update(tmp_path):
    """make lab works in an untracked copy: an update adds new assignments, never touches edited ones."""
    from course.workspace import update

    release = tmp_path / "notebooks"
    for name in ("01-a", "02-b"):
        (release / name).mkdir(parents=True)
        (release / name / f"{name}.ipynb").write_text('{"cells": []}')
    work = tmp_path / "work"
    assert update(work, release) == (["01-a", "02-b"], [])
    (work / "01-a" / "01-a.ipynb").write_text('{"cells": ["my answer"]}')
    (release / "01-a" / "01-a.ipynb").write_text('{"cells": ["a newer release"]}')
    (release / "03-c").mkdir()
    (release / "03-c" / "03-c.ipynb").write_text('{"cells": []}')
    assert update(work, release) == (["03-c"], ["01-a"])
    assert (work / "01-a" / "01-a.ipynb").read_text() == '{"cells": ["my answer"]}'
    assert (work / "03-c" / "03-c.ipynb").exists()
