"""CONTRIBUTING's "Adding an assignment", end to end: a throwaway assignment scaffolded in a copy of
the course, released with nbgrader, and a correct and a blank submission graded by the real grader
(whose kernels import the copy's course package, where the new checks module lives)."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.cells import meta
from autograder.release import REPO

NAME = "90-throwaway-echo"


def run(*args, cwd):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def course_copy(tmp_path) -> Path:
    root = tmp_path / "course-copy"
    root.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "course", root / "course", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_scaffold_refuses_a_bad_name_and_never_overwrites(course_copy):
    bad = run("-m", "autograder.scaffold", "9-Bad_Name", "--root", str(course_copy), cwd=course_copy)
    assert bad.returncode == 2 and "not an assignment name" in bad.stderr
    assert run("-m", "autograder.scaffold", NAME, "--root", str(course_copy), cwd=course_copy).returncode == 0
    again = run("-m", "autograder.scaffold", NAME, "--root", str(course_copy), cwd=course_copy)
    assert again.returncode == 2 and "exists already" in again.stderr


@pytest.mark.grading
@pytest.mark.timeout(900)
def test_a_scaffolded_assignment_releases_and_grades_correct_and_blank(course_copy, tmp_path):
    made = run("-m", "autograder.scaffold", NAME, "--root", str(course_copy), cwd=course_copy)
    assert made.returncode == 0, made.stderr
    released = run("-m", "autograder.release", NAME, "--root", str(course_copy), cwd=course_copy)
    assert released.returncode == 0, released.stderr
    release_nb = course_copy / "notebooks" / NAME / f"{NAME}.ipynb"
    source_nb = course_copy / "solutions" / NAME / f"{NAME}.ipynb"
    nb = nbformat.read(release_nb, as_version=4)
    assert "### BEGIN HIDDEN TESTS" not in "".join(c.source for c in nb.cells)
    assert "raise NotImplementedError" in "".join(c.source for c in nb.cells)
    graded = [c for c in nbformat.read(source_nb, as_version=4).cells if meta(c).get("grade")]
    assert graded and all(c.source.startswith("# checks that ") and c.source.splitlines()[-1].startswith('print("passed: ')
                          for c in graded)
    assert (course_copy / "autograder" / "release_history" / f"{NAME}.json").exists()

    sub = tmp_path / "submitted"
    for student, nb_path in (("correct", source_nb), ("blank", release_nb)):
        (sub / student / NAME).mkdir(parents=True)
        shutil.copy(nb_path, sub / student / NAME / f"{NAME}.ipynb")
    out = tmp_path / "grades.csv"
    proc = run("-m", "autograder", "grade", NAME, "--submitted", str(sub), "--out", str(out), "--root",
               str(course_copy), "--db", str(tmp_path / "gb.db"), "--autograded", str(tmp_path / "autograded"),
               "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    scores = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(open(out))}
    assert scores == {"correct": (2.0, 2.0), "blank": (0.0, 2.0)}
