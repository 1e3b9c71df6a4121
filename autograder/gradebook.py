"""nbgrader's gradebook and export (stages: "gradebook", "export").

The grader's main process is the only writer of the gradebook; submissions never see it. Each
assignment is put in the gradebook by nbgrader's own `generate_assignment` (so that its notebooks,
grade cells, points and checksums are nbgrader's), students are added as they are discovered, and
each graded cell's score is stored as nbgrader's `auto_score` of that cell. Storing a result twice
stores the same values (a re-run after a crash doubles nothing). The CSV is nbgrader's own
`CsvExportPlugin`.
"""
from __future__ import annotations

import contextlib
import io
import logging
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins.export import CsvExportPlugin

from autograder.release import nbgrader_env


def db_url(path: Path) -> str:
    return "sqlite:///" + str(Path(path).resolve())


def _quiet_gradebook(url: str) -> Gradebook:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy 2 warnings about nbgrader's own API
    warnings.filterwarnings("ignore", message=".*not in session.*")
    return Gradebook(url)


def assignment_is_current(url: str, name: str, notebooks: dict[str, dict[str, float]]) -> bool:
    """True when the gradebook already holds `name` with exactly these notebooks and grade cells."""
    try:
        with _quiet_gradebook(url) as gb:
            a = gb.find_assignment(name)
            have = {nb.name: {gc.name: gc.max_score for gc in nb.grade_cells} for nb in a.notebooks}
    except MissingEntry:
        return False
    return have == notebooks


def add_assignment(root: Path, source_dir: str, name: str, url: str) -> None:
    """Run `nbgrader generate_assignment NAME` against the gradebook at `url`, with the course's
    own nbgrader_config.py, releasing into a scratch folder (the course's notebooks/ is untouched)."""
    with tempfile.TemporaryDirectory(prefix="ag-release-") as tmp:
        t = Path(tmp)
        (t / "solutions").symlink_to(Path(root).resolve() / source_dir)
        shutil.copy(Path(root) / "nbgrader_config.py", t / "nbgrader_config.py")
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--log-level=WARN",
             f"--CourseDirectory.db_url={url}", "--CourseDirectory.source_directory=solutions",
             "--CourseDirectory.release_directory=release"],
            cwd=t, env=nbgrader_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed: {proc.stderr.strip()[-500:]}")


def store(url: str, result: dict, timestamp: str | None = None) -> None:
    """Store one journal record's scores as nbgrader auto scores (idempotent)."""
    with _quiet_gradebook(url) as gb:
        gb.update_or_create_student(result["student"])
        kwargs = {}
        if timestamp:
            try:  # nbgrader's own parser; a timestamp.txt it cannot read is left out
                from nbgrader.utils import parse_utc

                parse_utc(timestamp)
                kwargs["timestamp"] = timestamp
            except Exception:
                pass
        gb.update_or_create_submission(result["assignment"], result["student"], **kwargs)
        for nbname, entry in result["notebooks"].items():
            for cell in entry["cells"]:
                try:
                    grade = gb.find_grade(cell["grade_id"], nbname, result["assignment"], result["student"])
                except MissingEntry:
                    continue
                grade.auto_score = float(cell["points"])
                grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()


def export(url: str, out: Path, assignments: list[str], students: list[str]) -> None:
    """nbgrader's CSV export, restricted to these assignments and students."""
    with _quiet_gradebook(url) as gb:
        plugin = CsvExportPlugin(to=str(out) + ".tmp", assignment=list(assignments), student=list(students))
        with contextlib.redirect_stdout(io.StringIO()):
            plugin.export(gb)
    Path(str(out) + ".tmp").replace(out)
