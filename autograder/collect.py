"""Find the submissions (stage: "collect"): students are discovered from the folder, nothing to
register first.

Accepted layouts of `--submitted DIR`:
- nbgrader's: DIR/<student>/<assignment>/<notebook>.ipynb (a timestamp.txt beside it is kept);
- what an LMS download gives (as nbgrader's zip_collect takes it): DIR/<student>.zip,
  DIR/<student>_<anything>.zip, DIR/<student>.ipynb or DIR/<student>_<notebook>.ipynb.
  A zip is never extracted to disk: only its .ipynb members are read, by name, with size limits,
  so that a member named ../../x or an absolute path cannot write anywhere.

Student ids are restricted to letters, digits and ._@+- (nbgrader uses them as folder names).
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MAX_MEMBER = 20 * 1024**2


@dataclass
class Submission:
    assignment: str
    student: str
    files: dict[str, Path | None]  # notebook name -> file (None: missing)
    timestamp: str | None = None


@dataclass
class Collected:
    submissions: list[Submission] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what was ignored, and why


def _regular(p: Path) -> bool:
    try:
        st = os.lstat(p)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def _timestamp(folder: Path) -> str | None:
    ts = folder / "timestamp.txt"
    if _regular(ts) and ts.stat().st_size < 200:
        text = ts.read_text(errors="replace").strip()
        return text or None
    return None


def _match_notebooks(found: dict[str, Path], notebooks: list[str]) -> dict[str, Path | None]:
    """Map the assignment's notebook names to files; a lone notebook under another name is taken
    for a single-notebook assignment (learners rename files)."""
    out: dict[str, Path | None] = {n: found.get(n) for n in notebooks}
    if len(notebooks) == 1 and out[notebooks[0]] is None and len(found) == 1:
        out[notebooks[0]] = next(iter(found.values()))
    return out


def collect(submitted: Path, assignments: dict[str, list[str]], staging: Path) -> Collected:
    """Find every submission of the given assignments (name -> its notebook names) in `submitted`.
    LMS files are unpacked into `staging` in nbgrader's layout."""
    submitted = Path(submitted)
    col = Collected()
    if not submitted.is_dir():
        raise FileNotFoundError(f"--submitted {submitted} is not a folder")
    seen: set[tuple[str, str]] = set()
    for entry in sorted(submitted.iterdir()):
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_symlink():
            col.skipped.append(f"{name}: a symbolic link, ignored")
            continue
        if entry.is_dir():
            if not STUDENT_RE.match(name):
                col.skipped.append(f"{name}: not a valid student id")
                continue
            for a, notebooks in assignments.items():
                folder = entry / a
                if folder.is_symlink() or not folder.is_dir():
                    continue
                found = {p.stem: p for p in sorted(folder.glob("*.ipynb")) if _regular(p)}
                col.submissions.append(Submission(a, name, _match_notebooks(found, notebooks), _timestamp(folder)))
                seen.add((a, name))
        elif entry.suffix.lower() in (".zip", ".ipynb") and _regular(entry):
            for sub in _lms_entry(entry, assignments, staging, col):
                if (sub.assignment, sub.student) in seen:
                    col.skipped.append(f"{name}: a second submission of {sub.assignment} by {sub.student}, ignored")
                    continue
                seen.add((sub.assignment, sub.student))
                col.submissions.append(sub)
        else:
            col.skipped.append(f"{name}: not a student folder, zip or notebook")
    return col


def _student_of(stem: str, notebook_names: list[str]) -> str | None:
    for nb in sorted(notebook_names, key=len, reverse=True):
        for sep in ("_", "-", " "):
            if stem.endswith(sep + nb) and len(stem) > len(nb) + 1:
                stem = stem[: -len(nb) - 1]
                break
    student = stem.split("_")[0] if "_" in stem else stem
    return student if STUDENT_RE.match(student) else None


def _lms_entry(entry: Path, assignments: dict[str, list[str]], staging: Path, col: Collected) -> list[Submission]:
    all_nbs = sorted({n for nbs in assignments.values() for n in nbs})
    student = _student_of(entry.stem, all_nbs)
    if student is None:
        col.skipped.append(f"{entry.name}: no valid student id in the file name")
        return []
    notebooks: dict[str, bytes] = {}
    if entry.suffix.lower() == ".ipynb":
        if entry.stat().st_size > MAX_MEMBER:
            col.skipped.append(f"{entry.name}: larger than {MAX_MEMBER // 1024**2} MB")
            return []
        stem = entry.stem
        nbname = next((n for n in sorted(all_nbs, key=len, reverse=True) if stem.endswith(n)), None)
        notebooks[nbname or stem] = entry.read_bytes()
    else:
        try:
            with zipfile.ZipFile(entry) as z:
                for info in z.infolist():
                    base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
                    if info.is_dir() or not base.endswith(".ipynb") or base.startswith(".") \
                            or "__MACOSX" in info.filename or ".ipynb_checkpoints" in info.filename:
                        continue
                    if info.file_size > MAX_MEMBER:
                        col.skipped.append(f"{entry.name}: {base} larger than {MAX_MEMBER // 1024**2} MB")
                        continue
                    with z.open(info) as f:
                        data = f.read(MAX_MEMBER + 1)
                    if len(data) > MAX_MEMBER:
                        continue
                    notebooks.setdefault(base[: -len(".ipynb")], data)
        except (zipfile.BadZipFile, OSError) as exc:
            col.skipped.append(f"{entry.name}: not a readable zip ({exc})")
            return []
    subs = []
    for a, nbs in assignments.items():
        mine = {n: d for n, d in notebooks.items() if n in nbs}
        if not mine and len(assignments) == 1 and len(notebooks) == 1:
            mine = {nbs[0]: next(iter(notebooks.values()))} if len(nbs) == 1 else {}
        if not mine:
            continue
        folder = staging / student / a
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path | None] = {}
        for n in nbs:
            if n in mine:
                (folder / f"{n}.ipynb").write_bytes(mine[n])
                files[n] = folder / f"{n}.ipynb"
            else:
                files[n] = None
        subs.append(Submission(a, student, files))
    if not subs:
        col.skipped.append(f"{entry.name}: no notebook of {', '.join(assignments)} in it")
    return subs
