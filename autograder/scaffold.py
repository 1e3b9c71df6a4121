"""`python -m autograder.scaffold NN-topic [--root DIR]`: the start of a new assignment, in the
course's shape, that releases and grades as it stands.

It writes
- `solutions/NN-topic/NN-topic.ipynb`: an intro, an imports cell, one exercise (a UDP client
  `ask(address, data, timeout)`: a solution cell and a graded test cell with a visible self-check
  and hidden tests, following CONTRIBUTING's conventions), with nbgrader metadata and kebab-case ids;
- `course/checks/<topic>.py`: its check, calling the learner's code through `course.checks.runner`
  and recording evidence;
and prints the rest of CONTRIBUTING's "Adding an assignment" checklist. Replace the exercise with
yours; the shape (ids, header and last line of the graded cell, hidden block, evidence) stays.
Nothing existing is overwritten.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from autograder.release import REPO

__all__ = ["scaffold", "main"]

CHECKS = '''"""Checks of assignment {name} (started by `python -m autograder.scaffold`)."""
from __future__ import annotations

from course.checks import record_evidence
from course.checks.runner import call_with_deadline, describe_call
from course.errors import YourCodeError
from course.udp import UdpEchoServer

__all__ = ["check_ask"]


def check_ask(ask, payloads=(b"ping",)) -> None:
    """`ask(address, data, 1.0)` returns the reply of the course's UDP echo server, for each payload."""
    with UdpEchoServer() as server:
        for data in payloads:
            call = describe_call("ask", (server.address, data, 1.0))
            got = call_with_deadline(ask, server.address, data, 1.0, timeout=3.0, name="ask")
            record_evidence("ask", sent=data, returned=got)
            if got != data:
                raise YourCodeError(
                    f"{{call}} returned {{got!r}}; the echo server sent back {{data!r}}: return the bytes of the "
                    f"datagram that came back (recvfrom's first item)"
                )
'''

INTRO = """# {title}

After this notebook you can: send a UDP datagram to a server on loopback and read its reply.

(Started by `python -m autograder.scaffold`: replace this exercise with yours, keeping the shape.)"""

IMPORTS = """import socket

from course.checks import {module} as check"""

SOLUTION = '''def ask(address, data, timeout=1.0):
    """Send the datagram `data` to `address` and return the reply (bytes); TimeoutError after `timeout` s."""
    ### BEGIN SOLUTION
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, address)
        reply, _ = s.recvfrom(65535)
        return reply
    ### END SOLUTION'''

TEST = '''# checks that ask gets b"ping" back from the course's UDP echo server (hidden: an empty datagram and 1,000 bytes)
check.check_ask(ask)
### BEGIN HIDDEN TESTS
check.check_ask(ask, payloads=(b"", bytes(range(256)) * 4))
### END HIDDEN TESTS
print("passed: ask")'''


def _cell(kind: str, source: str, grade_id: str, *, solution=False, grade=False, locked=False, points=0):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    nb = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
          "task": False}
    if grade:
        nb["points"] = points
    cell.metadata["nbgrader"] = nb
    return cell


def scaffold(name: str, root: Path = REPO) -> list[Path]:
    """Write the new assignment `name` (NN-topic) under `root`; returns the files written."""
    if not re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*", name):
        raise ValueError(f"{name!r} is not an assignment name like 09-names-and-families (two digits, then kebab-case)")
    module = name[3:].replace("-", "_")
    notebook = Path(root) / "solutions" / name / f"{name}.ipynb"
    checks = Path(root) / "course" / "checks" / f"{module}.py"
    for path in (notebook, checks):
        if path.exists():
            raise FileExistsError(f"{path} exists already; the scaffold never overwrites a file")
    if not (Path(root) / "course" / "checks").is_dir():
        raise FileNotFoundError(f"{Path(root) / 'course' / 'checks'} is missing; run it in a copy of the course")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    title = f"{name[:2]} · {name[3:].replace('-', ' ').capitalize()}"
    nb.cells = [
        _cell("markdown", INTRO.format(title=title), "intro", locked=True),
        _cell("code", IMPORTS.format(module=module), "imports", locked=True),
        _cell("code", SOLUTION, "exercise-ask", solution=True),
        _cell("code", TEST, "ask-echo", grade=True, locked=True, points=2),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{module[:20]}-{i}"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, notebook)
    checks.write_text(CHECKS.format(name=name))
    return [notebook, checks]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.scaffold", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="NN-topic, kebab-case (e.g. 09-names-and-families)")
    p.add_argument("--root", type=Path, default=REPO, help="the course folder (default: this repository)")
    args = p.parse_args(argv)
    try:
        written = scaffold(args.name, args.root)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print("next (CONTRIBUTING.md, 'Adding an assignment'): write the lesson and its exercises; tests in "
          f"tests/; `python -m autograder.release {args.name}`; the registry in autograder/samples/{args.name}/; "
          "the README's course table; make test; tests/load_check.py --only " + args.name[:2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
