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
def test_make_lab_serves_the_course():
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", "LAB_ARGS=--no-browser --IdentityProvider.token=course-test"],
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
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
