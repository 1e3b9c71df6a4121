"""The learner's own copy of the notebooks: `make lab` works in it, so that a course update
(`git pull`) never touches what the learner wrote.

    python -m course.workspace [DEST]     # default: work/ beside notebooks/

Each assignment folder of notebooks/ that DEST does not have yet is copied into DEST; an assignment
already there is left exactly as the learner left it (a newer release of it is only reported).
"""
from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

__all__ = ["update"]

REPO = Path(__file__).resolve().parent.parent


def update(dest: Path, release: Path = REPO / "notebooks") -> tuple[list[str], list[str]]:
    """Copy the assignments `dest` lacks; return (added, kept but changed upstream)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    added, newer = [], []
    for folder in sorted(p for p in Path(release).iterdir() if p.is_dir() and not p.name.startswith(".")):
        mine = dest / folder.name
        if not mine.exists():
            shutil.copytree(folder, mine, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            added.append(folder.name)
            continue
        for nb in folder.glob("*.ipynb"):
            if (mine / nb.name).exists() and not filecmp.cmp(nb, mine / nb.name, shallow=False):
                newer.append(folder.name)
                break
    return added, newer


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dest = Path(args[0]) if args else REPO / "work"
    added, newer = update(dest)
    for name in added:
        print(f"added {name} to {dest}")
    if newer:
        print(f"kept your work in {', '.join(newer)} (notebooks/ has a newer release of them: compare, or move "
              f"your folder away and run this again to get the new one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
