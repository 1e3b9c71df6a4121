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


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or assignments()
    with tempfile.TemporaryDirectory() as tmp:
        release = generate(Path(tmp), names)
        for name in names:
            dest = REPO / "notebooks" / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(release / name, dest)
            print(f"released {name} -> notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
