"""Per-student HTML feedback (stage: "feedback").

nbgrader's own `generate_feedback` renders the graded notebook, hidden test cells included
(nbgrader issues #917 and #1363). This page is built from the journal record alone: for each graded
cell, its name, the points earned, passed or not, and the check's one-sentence message, which the
grader has already screened for quotes of the hidden tests. No cell source and no raw output ever
reaches it.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

STYLE = """
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
.pass{color:#17692a}.fail{color:#a31515}.score{font-size:1.3rem}
"""


def page(record: dict, nbname: str) -> str:
    e = html.escape
    entry = record["notebooks"][nbname]
    got = sum(c["points"] for c in entry["cells"])
    total = sum(c["max_points"] for c in entry["cells"])
    rows = []
    for c in entry["cells"]:
        status = '<span class="pass">passed</span>' if c["passed"] else '<span class="fail">failed</span>'
        msg = e(c["message"]) if not c["passed"] else ""
        rows.append(f"<tr><td><code>{e(c['grade_id'])}</code></td><td>{c['points']:g} / {c['max_points']:g}</td>"
                    f"<td>{status}</td><td>{msg}</td></tr>")
    notes = ""
    if entry.get("reason"):
        notes += f"<p><strong>Note:</strong> {e(entry['reason'])}.</p>"
    for n in entry.get("notes", []):
        notes += f"<p><strong>Note:</strong> {e(n)}.</p>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(record['assignment'])}: feedback for "
            f"{e(record['student'])}</title><style>{STYLE}</style></head><body>"
            f"<h1>{e(record['assignment'])} / {e(nbname)}</h1><p>Student: <code>{e(record['student'])}</code></p>"
            f"<p class='score'>Score: <strong>{got:g} / {total:g}</strong></p>{notes}"
            f"<table><tr><th>check</th><th>points</th><th>result</th><th>what to look at</th></tr>{''.join(rows)}</table>"
            f"</body></html>\n")


# nbgrader's `release_feedback` reads these beside each feedback page (nbgrader's `collect` puts
# them in the submission folder): the submission's time, and the secret that names the page in the
# exchange so that only its student finds it.
RELEASE_FILES = ("timestamp.txt", "submission_secret.txt")


def write(record: dict, out: Path, submission_folder: Path | None = None) -> list[Path]:
    written = []
    folder = Path(out) / record["student"] / record["assignment"]
    folder.mkdir(parents=True, exist_ok=True)
    if submission_folder is not None:
        import shutil

        for name in RELEASE_FILES:
            src = Path(submission_folder) / name
            if src.is_file() and not src.is_symlink():
                shutil.copyfile(src, folder / name)
    for nbname in record["notebooks"]:
        p = folder / f"{nbname}.html"
        tmp = folder / f".{nbname}.html.tmp"
        tmp.write_text(page(record, nbname))
        os.replace(tmp, p)
        written.append(p)
    return written
