"""Generate the student notebooks (notebooks/) from the instructor ones (solutions/) with nbgrader
(stage: "release"). `python -m autograder.release [NN-topic ...]` regenerates assignments in place (all by default);
`generate(root)` writes a release under another root, which the tests compare with notebooks/.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def assignments(repo: Path = REPO) -> list[str]:
    """The assignment folders of solutions/, in course order (01-..., 02-...)."""
    root = repo / "solutions"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def nbgrader_env() -> dict:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)  # nbgrader runs alembic from PATH
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def generate(out_root: Path, names: list[str] | None = None, repo: Path = REPO) -> Path:
    """Run `nbgrader generate_assignment` for each assignment with solutions/ of `repo` as source
    and `out_root`/notebooks as release; returns that release folder."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    src = out_root / "solutions"
    if not src.exists():
        src.symlink_to(repo / "solutions")
    shutil.copy(repo / "nbgrader_config.py", out_root / "nbgrader_config.py")
    for name in names or assignments(repo):
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--no-db", "--log-level=WARN"],
            cwd=out_root,
            env=nbgrader_env(),
            check=True,
            capture_output=True,
            text=True,
        )
    return out_root / "notebooks"


# ----------------------------------------------------------------------------------------------
# Checksums of every release: a class in progress hands in notebooks fetched from an earlier release
# ----------------------------------------------------------------------------------------------
HISTORY = Path("autograder") / "release_history"


def history_path(assignment: str, root: Path = REPO) -> Path:
    return Path(root) / HISTORY / f"{assignment}.json"


def locked_checksums(nb) -> dict[str, str]:
    """{grade_id: checksum} of the locked and graded test cells of a released notebook."""
    from autograder.cells import is_fixed, meta

    out = {}
    for cell in nb.cells:
        m = meta(cell)
        if m.get("grade_id") and m.get("checksum") and is_fixed(cell):
            out[m["grade_id"]] = m["checksum"]
    return out


def past_checksums(assignment: str, root: Path = REPO) -> dict[str, dict[str, list[str]]]:
    """{notebook: {grade_id: [checksum of that cell in each release so far]}} ({} if none kept)."""
    import json

    path = history_path(assignment, root)
    return json.loads(path.read_text()) if path.exists() else {}


def remember(assignment: str, notebooks: dict[str, object], root: Path = REPO) -> None:
    """Add the checksums of these released notebooks ({name: notebook}) to the assignment's history."""
    import json

    history = past_checksums(assignment, root)
    for nbname, nb in notebooks.items():
        cells = history.setdefault(nbname, {})
        for gid, checksum in locked_checksums(nb).items():
            known = cells.setdefault(gid, [])
            if checksum not in known:
                known.append(checksum)
    path = history_path(assignment, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    import nbformat

    p = argparse.ArgumentParser(prog="python -m autograder.release", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", metavar="NN-topic", help="assignments to release (default: all)")
    p.add_argument("--root", type=Path, default=REPO, help="the course folder (default: this repository)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    root = args.root.resolve()
    names = args.names or assignments(root)
    with tempfile.TemporaryDirectory() as tmp:
        release = generate(Path(tmp), names, repo=root)
        for name in names:
            dest = root / "notebooks" / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(release / name, dest)
            remember(name, {p.stem: nbformat.read(p, as_version=4) for p in sorted(dest.glob("*.ipynb"))}, root)
            print(f"released {name} -> {dest} (checksums kept in {history_path(name, root)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
