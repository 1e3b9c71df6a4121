"""`make class-demo`: a whole class of this course on a real JupyterHub, from scratch, and gone after.

Run as root inside a network namespace made for the run (`make class-demo` does both: the namespace
has only lo, so the hub's usual port 8000 is free, two runs at once cannot collide, and nothing
leaves the machine). It

1. removes the accounts and folders of earlier runs that were killed (their driver is gone);
2. makes real local accounts with a per-run prefix: an instructor, a teaching assistant (both in the
   course's staff group, sharing the course folder) and three students, each with a password;
3. starts JupyterHub (deploy/jupyterhub/jupyterhub_config.py) with nbgrader's exchange, and a
   single-user server for every account, spawned by the hub as that account;
4. the instructor (a non-root account) releases assignment 04;
5. each student, through their own server's nbgrader API with their own token, fetches it, fills it
   (one correct, one partly right, one hostile: the rewrites-gradebook sample) and submits;
6. the instructor presses Formgrader's Autograde (refused: nbgrader would run the hostile code
   unsandboxed as the instructor), collects, grades with the course's grader and releases feedback;
7. each student fetches their feedback;
8. checks every count from its own source (the hub's REST API, the owner of each student's files,
   the gradebook, the fetched feedback pages), compares the scores with the samples' expectations,
   stops everything and removes the accounts.

With --browser (`make class-browser-test`) a fourth student works in Debian's Chromium (log in,
fetch from the Assignments tab, run a cell, Validate, Submit) and the instructor opens Formgrader
there and sees that submission; under CI=true a missing browser fails the run instead of skipping.

Its last line is exactly
`class demo: N students, N fetched, N submitted, N graded, N feedback returned (scores: a/b, ...)`,
and it exits 0 only when every step worked for every student.
"""
from __future__ import annotations

import csv
import grp
import hashlib
import html
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from autograder import samples as smp  # noqa: E402
from autograder.grade import hidden_lines  # noqa: E402

def _pinned(extra: str, name: str) -> str:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return next(r for r in project["optional-dependencies"][extra] if r.replace(" ", "").startswith(name + "=="))


JUPYTERHUB = _pinned("class", "jupyterhub")  # the version this hub is tested with (pyproject's [class] extra)
PROXY = "configurable-http-proxy@5.3.0"  # from npm, likewise pinned
ROOT = Path(os.environ.get("CLASS_DEMO_ROOT", "/srv/sockets-class"))
MARK = "sockets-course class demo"
ASSIGNMENT = "04-tcp-client-server"
HUB = "http://127.0.0.1:8000"
STUDENTS = {"alice": "correct", "bob": "partly-right", "carol": "rewrites-gradebook"}


class DemoError(RuntimeError):
    pass


def log(*parts) -> None:
    print("class demo:", *parts, flush=True)


def run(cmd: list[str], *, user: str | None = None, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    if user is not None:
        home = pwd.getpwnam(user).pw_dir
        base = {"HOME": home, "USER": user, "LOGNAME": user, "PATH": os.environ["PATH"]}
        cmd = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in {**base, **(env or {})}.items()],
               "sh", "-c", 'umask 002; cd "$0" && exec "$@"', str(cwd or home), *cmd]
        env = None
    proc = subprocess.run(cmd, cwd=cwd if user is None else None, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise DemoError(f"{' '.join(cmd[-6:])} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc


def wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"{what} within {seconds:.0f} s")
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------
def http(method: str, url: str, token: str, body=None, form: dict | None = None, timeout: float = 120):
    headers = {"Authorization": f"token {token}"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode(errors="replace")
            try:
                return r.status, (json.loads(text) if text.strip() else None)
            except ValueError:
                return r.status, text
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text


def hub_up() -> bool:
    try:
        with urllib.request.urlopen(f"{HUB}/hub/api/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------
# Accounts, folders, the class's environment
# ----------------------------------------------------------------------------------------------
def leftovers() -> list[str]:
    """Accounts of earlier runs whose driver process is gone."""
    out = []
    for p in pwd.getpwall():
        if p.pw_gecos.startswith(MARK):
            pid = p.pw_gecos.rsplit("pid=", 1)[-1]
            if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
                out.append(p.pw_name)
    return out


def remove_account(name: str) -> None:
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    wait(lambda: subprocess.run(["pgrep", "-u", name], capture_output=True).returncode != 0, 20,
         f"processes of {name} did not end")
    subprocess.run(["userdel", "-r", name], capture_output=True)


def clean_leftovers() -> None:
    old = leftovers()
    prefixes = {n.split("-")[0] for n in old}
    for name in old:
        remove_account(name)
    for prefix in prefixes:
        subprocess.run(["groupdel", f"{prefix}-staff"], capture_output=True)
        shutil.rmtree(ROOT / prefix, ignore_errors=True)
    if old:
        log(f"removed {len(old)} account(s) left by killed runs: {', '.join(sorted(old))}")


def make_account(name: str, groups: list[str]) -> str:
    password = secrets.token_urlsafe(12)
    run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", f"{MARK} pid={os.getpid()}",
         *(["--groups", ",".join(groups)] if groups else []), name])
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
    return password


def class_venv(prepare: bool = False) -> Path:
    """An environment every account can read: Debian's python3 (not root's pyenv), JupyterHub and the
    course (a copy, not an editable install), kept between runs, keyed on what it holds. Made (with
    the package registries) by `--prepare`, outside the run's network namespace."""
    key = hashlib.sha256((JUPYTERHUB + (REPO / "pyproject.toml").read_text()).encode()).hexdigest()[:12]
    venv = ROOT / f"venv-{key}"
    if not prepare:
        if not (venv / ".ready").exists():
            raise DemoError(f"{venv} is not prepared: run `class_demo.py --prepare` first (make class-demo does)")
        return venv
    if (venv / ".ready").exists():
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(REPO)], timeout=600)
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
    run([python, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", JUPYTERHUB, str(REPO)], timeout=1200)
    (venv / ".ready").touch()
    return venv


def proxy(prepare: bool = False) -> Path:
    folder = ROOT / "proxy"
    exe = folder / "node_modules" / ".bin" / "configurable-http-proxy"
    if not exe.exists():
        if not prepare:
            raise DemoError(f"{exe} is missing: run `class_demo.py --prepare` first (make class-demo does)")
        folder.mkdir(parents=True, exist_ok=True)
        run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder), PROXY], timeout=600)
    return exe


# ----------------------------------------------------------------------------------------------
# A real browser: Debian's Chromium driven by Playwright (its own browser download cannot work here)
# ----------------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-default-apps", "--metrics-recording-only"]


class Browser:
    """One Chromium for the run; a page per person; a screenshot of every page when a step fails."""

    def __init__(self, shots: Path):
        from playwright.sync_api import sync_playwright

        self.shots = shots
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        self.pages: dict[str, object] = {}

    def page(self, who: str):
        if who not in self.pages:
            context = self.browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(60_000)
            self.pages[who] = context.new_page()
        return self.pages[who]

    def screenshots(self) -> list[str]:
        out = []
        for who, page in self.pages.items():
            path = self.shots / f"{who}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                out.append(str(path))
            except Exception:  # noqa: BLE001 - a crashed page has no picture
                pass
        return out

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def log_in(page, name: str, password: str) -> None:
    page.goto(f"{HUB}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{name}/lab**", timeout=120_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)


def student_in_the_browser(page, name: str, password: str) -> None:
    """Log in, fetch from the Assignments tab, open the notebook, run a cell, Validate, Submit."""
    log_in(page, name, password)
    page.click("text=Nbgrader")
    page.click("li.lm-Menu-item >> text=Assignment List")
    panel = page.locator(".jp-Activity:has-text('Released assignments'), #nbgrader-assignment-list").first
    panel.locator("button:has-text('Fetch')").first.click()
    panel.locator("button:has-text('Submit')").first.wait_for()
    # the fetched notebook: open it from the list of downloaded assignments
    panel.locator(f"text={ASSIGNMENT}").first.click()
    panel.locator(f"a:has-text('{ASSIGNMENT}')").last.click()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").last
    notebook.locator(".jp-CodeCell").first.wait_for()
    page.locator(".jp-StatusBar-Widget:has-text('Idle')").first.wait_for(timeout=120_000)  # the kernel is up
    notebook.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
    page.click("text=Run >> nth=0")
    page.click("li.lm-Menu-item >> text=Run Selected Cell")
    notebook.locator(".jp-CodeCell .jp-InputPrompt:has-text('[1]')").first.wait_for(timeout=120_000)
    notebook.locator("button:has-text('Validate'), .jp-ToolbarButtonComponent:has-text('Validate')").first.click()
    page.locator(".jp-Dialog:has-text('Validat')").first.wait_for(timeout=180_000)
    page.locator(".jp-Dialog button").last.click()
    page.click("text=Nbgrader")
    page.click("li.lm-Menu-item >> text=Assignment List")
    panel.locator("button:has-text('Submit')").first.click()
    panel.locator("text=Submitted assignments").first.wait_for()
    wait(lambda: panel.locator(".list_item:has-text('UTC'), li:has-text('UTC')").count() > 0, 60,
         f"{name}'s submission did not appear in the Assignments tab")


def instructor_in_the_browser(page, name: str, password: str, student: str) -> None:
    """Log in, open Formgrader, go to the assignment's submissions, and find the student's."""
    log_in(page, name, password)
    # JupyterHub forbids framing any user's server (frame-ancestors 'none': users share one origin,
    # so framing would allow clickjacking between them), so Formgrader's panel in the lab stays
    # empty ("refused to connect"); on a hub the instructor opens Formgrader in its own tab.
    page.goto(f"{HUB}/user/{name}/formgrader")
    page.locator(f"text={ASSIGNMENT}").first.wait_for()
    page.locator(f"a[href*='manage_submissions/{ASSIGNMENT}']").first.click()
    page.locator(f"text={student}").first.wait_for()


# ----------------------------------------------------------------------------------------------
# The class
# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.geteuid() != 0:
        print("class demo: run as root (it creates accounts); `make class-demo` does", file=sys.stderr)
        return 2
    if argv[:1] == ["--prepare"]:
        ROOT.mkdir(parents=True, exist_ok=True)
        os.chmod(ROOT, 0o755)
        log(f"prepared {class_venv(prepare=True)} and {proxy(prepare=True)}")
        return 0
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    if any(line.split()[1] != "lo" for line in addresses.splitlines()):
        print("class demo: run inside a network namespace with only lo (`make class-demo` makes one)", file=sys.stderr)
        return 2
    browser_wanted = "--browser" in argv
    if browser_wanted and not (Path(CHROMIUM).exists() and _has_playwright()):
        why = f"{CHROMIUM} or Playwright's Python package is missing (apt-get install chromium; pip install '.[class]')"
        if os.environ.get("CI") == "true":
            print(f"class demo: FAILED: the browser test cannot run: {why}", file=sys.stderr)
            return 1
        print(f"class demo: the browser test is skipped: {why}", file=sys.stderr)
        browser_wanted = False
    ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(ROOT, 0o755)
    clean_leftovers()
    prefix = "scd" + secrets.token_hex(2)
    class_dir = ROOT / prefix
    instructor, ta = f"{prefix}-instructor", f"{prefix}-ta"
    students = {f"{prefix}-{name}": sample for name, sample in STUDENTS.items()}
    in_browser = f"{prefix}-dave" if browser_wanted else None  # works in JupyterLab, and hands in the release as is
    if in_browser:
        students[in_browser] = "blank"
    accounts = [instructor, ta, *students]
    browser = None
    staff = f"{prefix}-staff"
    hub = None
    counts = {"fetched": 0, "submitted": 0, "graded": 0, "feedback": 0}
    scores: dict[str, str] = {}
    try:
        venv = class_venv()
        chp = proxy()
        log(f"environment {venv}, proxy {chp}")
        run(["groupadd", staff])
        passwords = {instructor: make_account(instructor, [staff]), ta: make_account(ta, [staff])}
        for s in students:
            passwords[s] = make_account(s, [])
        for sub in ("hub", "exchange", "course"):
            (class_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(class_dir, 0o755)
        os.chmod(class_dir / "hub", 0o700)
        os.chmod(class_dir / "exchange", 0o1777)
        # the course folder: the instructor's and the TA's (group staff, setgid), nobody else's
        course = class_dir / "course"
        for part in ("solutions", "notebooks"):
            shutil.copytree(REPO / part, course / part, dirs_exist_ok=True)
        shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
        run(["chown", "-R", f"{instructor}:{staff}", str(course)])
        run(["chmod", "-R", "u+rwX,g+rwX,o-rwx", str(course)])
        run(["find", str(course), "-type", "d", "-exec", "chmod", "g+s", "{}", "+"])
        # the staff's nbgrader works on the shared course folder (their servers start in it: the hub's
        # pre_spawn_hook; their processes start in their home, where nbgrader looks for its config)
        for name in (instructor, ta):
            cfg = Path(pwd.getpwnam(name).pw_dir) / ".jupyter" / "nbgrader_config.py"
            cfg.parent.mkdir(exist_ok=True)
            cfg.write_text(f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
                           "c.CourseDirectory.source_directory = 'solutions'\nc.CourseDirectory.release_directory = 'notebooks'\n")
            run(["chown", "-R", f"{name}:{name}", str(cfg.parent)])
        # the hub-wide nbgrader configuration: exchange, course id, nbgrader's autograde refused
        etc = venv / "etc" / "jupyter"
        etc.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "deploy" / "jupyterhub" / "nbgrader_config.py", etc / "nbgrader_config.py")
        # the course's server extension takes Formgrader's Autograde and Generate feedback away
        (etc / "jupyter_server_config.d").mkdir(exist_ok=True)
        shutil.copy(REPO / "deploy" / "jupyterhub" / "jupyter_server_config.json",
                    etc / "jupyter_server_config.d" / "sockets-course-hub.json")

        token = secrets.token_hex(24)
        env = dict(os.environ, CLASS_DIR=str(class_dir), CLASS_VENV=str(venv), CLASS_PROXY=str(chp),
                   CLASS_USERS=",".join(accounts), CLASS_STAFF=f"{instructor},{ta}", CLASS_ADMIN_TOKEN=token,
                   PATH=f"{venv}/bin:" + os.environ["PATH"])
        hub_log = open(class_dir / "hub" / "hub.log", "w")
        hub = subprocess.Popen([str(venv / "bin" / "jupyterhub"), "-f", str(REPO / "deploy" / "jupyterhub" / "jupyterhub_config.py")],
                               cwd=class_dir / "hub", env=env, stdout=hub_log, stderr=subprocess.STDOUT, start_new_session=True)
        wait(lambda: hub.poll() is not None or hub_up(), 90, "JupyterHub did not answer")
        if hub.poll() is not None:
            raise DemoError(f"JupyterHub exited {hub.returncode}: {(class_dir / 'hub' / 'hub.log').read_text()[-1500:]}")
        api = f"{HUB}/hub/api"
        status, _ = http("POST", f"{api}/users", token, {"usernames": accounts})
        if status not in (201, 409):
            raise DemoError(f"the hub did not create the users: {status} {_}")
        tokens = {}
        for name in accounts:
            status, body = http("POST", f"{api}/users/{name}/tokens", token, {"note": "class demo", "expires_in": 3600})
            if status != 201:
                raise DemoError(f"no token for {name}: {status} {body}")
            tokens[name] = body["token"]
            status, body = http("POST", f"{api}/users/{name}/server", token)
            if status not in (201, 202):
                raise DemoError(f"the hub did not start {name}'s server: {status} {body}")

        def ready(name):
            status, body = http("GET", f"{api}/users/{name}", token)
            return status == 200 and (body.get("servers") or {}).get("", {}).get("ready")

        for name in accounts:
            wait(lambda: ready(name), 180, f"{name}'s server was not ready")
        status, users = http("GET", f"{api}/users", token)
        running = [u["name"] for u in users if (u.get("servers") or {}).get("", {}).get("ready") and u["name"] in accounts]
        if sorted(running) != sorted(accounts):
            raise DemoError(f"the hub reports servers running for {running}, expected {accounts}")
        log(f"hub up with {len(users)} users, {len(running)} servers running (hub REST API)")

        # 4. the instructor releases 04
        nbg = [str(venv / "bin" / "nbgrader")]
        cls_env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "CLASS_DIR": str(class_dir)}
        run(nbg + ["generate_assignment", ASSIGNMENT, "--force"], user=instructor, cwd=course, env=cls_env)
        run(nbg + ["release_assignment", ASSIGNMENT, "--force"], user=instructor, cwd=course, env=cls_env)
        log(f"{instructor} released {ASSIGNMENT}")

        # 5. students fetch, fill, submit, each through their own server
        all_samples = {s.name: s for s in smp.for_assignment(ASSIGNMENT, smp.load())}
        gradebook = course / "gradebook.db"
        for name, sample_name in students.items():
            if name == in_browser:
                continue
            base = f"{HUB}/user/{name}"
            status, body = http("POST", f"{base}/assignments/fetch", tokens[name],
                                form={"course_id": "sockets", "assignment_id": ASSIGNMENT})
            if status != 200 or not (body or {}).get("success"):
                raise DemoError(f"{name} could not fetch {ASSIGNMENT}: {status} {str(body)[:500]}")
            home = Path(pwd.getpwnam(name).pw_dir)
            fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            if not fetched.exists() or fetched.stat().st_uid != pwd.getpwnam(name).pw_uid:
                raise DemoError(f"{fetched} is missing or not owned by {name}")
            counts["fetched"] += 1
            text = smp.build(all_samples[sample_name], ASSIGNMENT, REPO, db=str(gradebook))[ASSIGNMENT]
            text = text.replace(str(REPO.resolve()), str(course))
            status, body = http("PUT", f"{base}/api/contents/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", tokens[name],
                                {"type": "notebook", "format": "json", "content": json.loads(text)})
            if status not in (200, 201):
                raise DemoError(f"{name} could not save the notebook: {status} {str(body)[:300]}")
            status, body = http("POST", f"{base}/assignments/submit", tokens[name],
                                form={"course_id": "sockets", "assignment_id": ASSIGNMENT})
            if status != 200 or not (body or {}).get("success"):
                raise DemoError(f"{name} could not submit: {status} {str(body)[:500]}")
            inbound = list((class_dir / "exchange" / "sockets" / "inbound").glob(f"{name}+{ASSIGNMENT}+*"))
            if len(inbound) != 1 or inbound[0].stat().st_uid != pwd.getpwnam(name).pw_uid:
                raise DemoError(f"the exchange holds {len(inbound)} submission(s) of {name}, or not owned by them")
            counts["submitted"] += 1
        if in_browser:
            browser = Browser(Path(f"/tmp/class-demo-{prefix}"))
            browser.shots.mkdir(exist_ok=True)
            student_in_the_browser(browser.page(in_browser), in_browser, passwords[in_browser])
            uid = pwd.getpwnam(in_browser).pw_uid
            fetched = Path(pwd.getpwnam(in_browser).pw_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            inbound = list((class_dir / "exchange" / "sockets" / "inbound").glob(f"{in_browser}+{ASSIGNMENT}+*"))
            if not fetched.exists() or fetched.stat().st_uid != uid or len(inbound) != 1 or inbound[0].stat().st_uid != uid:
                raise DemoError(f"{in_browser} worked in the browser, but the fetched notebook or the submission is missing or not theirs")
            counts["fetched"] += 1
            counts["submitted"] += 1
            log(f"{in_browser} logged in, fetched, ran a cell, validated and submitted in Chromium")
        log(f"{counts['fetched']} fetched, {counts['submitted']} submitted (files owned by each student)")

        # 6. Formgrader's Autograde is refused; the course's grader grades
        run(nbg + ["collect", ASSIGNMENT], user=instructor, cwd=course, env=cls_env)
        hostile = next(n for n, s in students.items() if s == "rewrites-gradebook")
        status, body = http("POST", f"{HUB}/user/{instructor}/formgrader/api/submission/{ASSIGNMENT}/{hostile}/autograde",
                            tokens[instructor])
        said = json.dumps(body)
        if status != 200 or not isinstance(body, dict) or body.get("success") or "sandboxed grader" not in said:
            text = re.sub(r"<[^>]+>", " ", str(body).split("<body", 1)[-1])
            raise DemoError(f"Formgrader's Autograde was not refused: {status} {' '.join(text.split())[:600]}")
        cli = run(nbg + ["autograde", ASSIGNMENT, "--student", hostile, "--force"], user=instructor, cwd=course, env=cls_env,
                  check=False)
        if "sandboxed grader" not in cli.stdout + cli.stderr:
            raise DemoError(f"`nbgrader autograde` was not refused on the hub (exit {cli.returncode}): {(cli.stderr or cli.stdout)[-600:]}")
        log("Formgrader's Autograde and `nbgrader autograde` refused (they would run student code unsandboxed as the instructor)")
        grades = course / "grades.csv"
        proc = run([str(venv / "bin" / "python"), "-m", "autograder", "grade", ASSIGNMENT, "--root", str(course),
                    "--submitted", str(course / "submitted"), "--db", str(gradebook), "--out", str(grades),
                    "--autograded", str(course / "autograded"), "--feedback", str(course / "feedback"), "--jobs", "2"],
                   user=instructor, cwd=course, env=cls_env, timeout=1200)
        with open(grades, newline="") as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{gradebook}") as gb:
            for name in students:
                sub = gb.find_submission(ASSIGNMENT, name)
                if sub is not None:
                    counts["graded"] += 1
                    scores[name] = f"{sub.score:g}/{sub.max_score:g}"
        mismatch = []
        for name, sample_name in students.items():
            row = rows.get(name)
            want = smp.expected_score(all_samples[sample_name], float(row["max_score"])) if row else None
            if row is None or want is None or abs(float(row["score"]) - want) > 1e-9 or scores.get(name) != f"{float(row['score']):g}/{float(row['max_score']):g}":
                mismatch.append(f"{name} ({sample_name}): gradebook {scores.get(name)}, csv {row and row['score']}, expected {want}")
        if mismatch:
            raise DemoError("scores differ from the samples' expectations: " + "; ".join(mismatch) + "\n" + proc.stdout[-1500:])
        run(nbg + ["release_feedback", ASSIGNMENT], user=instructor, cwd=course, env=cls_env)
        log(f"graded {counts['graded']} with the course's grader; feedback released")
        if browser is not None:
            instructor_in_the_browser(browser.page(instructor), instructor, passwords[instructor], in_browser)
            log(f"{instructor} opened Formgrader in Chromium and saw {in_browser}'s submission")

        # 7. students fetch their feedback
        hidden = hidden_lines(smp.nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4))
        for name in students:
            status, body = http("POST", f"{HUB}/user/{name}/assignments/fetch_feedback", tokens[name],
                                form={"course_id": "sockets", "assignment_id": ASSIGNMENT})
            if status != 200 or not (body or {}).get("success"):
                raise DemoError(f"{name} could not fetch feedback: {status} {str(body)[:500]}")
            pages = list((Path(pwd.getpwnam(name).pw_dir) / ASSIGNMENT / "feedback").glob("*/*.html"))
            if len(pages) != 1:
                raise DemoError(f"{name} fetched {len(pages)} feedback page(s), expected 1")
            text = html.unescape(re.sub(r"<[^>]+>", "", pages[0].read_text()))
            leaked = [line for line in hidden if line in text]
            if leaked or f"Score: {scores[name].replace('/', ' / ')}" not in text:
                raise DemoError(f"{name}'s feedback quotes hidden tests {leaked[:2]} or does not show the score {scores[name]}")
            counts["feedback"] += 1
        log(f"{counts['feedback']} feedback pages fetched, each with its score and no hidden test line")
        ok = True
    except Exception as exc:  # noqa: BLE001 - every failure is reported, and everything is cleaned up
        print(f"class demo: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        if browser is not None:
            print(f"class demo: screenshots: {', '.join(browser.screenshots()) or 'none'}", file=sys.stderr)
        hub_log = class_dir / "hub" / "hub.log"
        if hub_log.exists():
            kept = Path(f"/tmp/class-demo-{prefix}-hub.log")
            shutil.copy(hub_log, kept)
            print(f"class demo: the hub's whole log is kept in {kept}", file=sys.stderr)
            tail = [line for line in hub_log.read_text(errors="replace").splitlines() if " W " in line[:40] or " E " in line[:40]
                    or "Error" in line or "Traceback" in line or line.startswith("  ")][-40:]
            print("class demo: the hub's log (warnings and errors, last 40 lines):\n" + "\n".join(tail), file=sys.stderr)
        ok = False
    finally:
        if browser is not None:
            browser.close()
        if hub is not None and hub.poll() is None:
            os.killpg(hub.pid, signal.SIGTERM)
            try:
                hub.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
        for name in accounts:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            remove_account(name)
        try:
            grp.getgrnam(staff)
            subprocess.run(["groupdel", staff], capture_output=True)
        except KeyError:
            pass
        shutil.rmtree(class_dir, ignore_errors=True)
    n = len(students)
    shown = ", ".join(scores.get(name, "-") for name in sorted(students))
    print(f"class demo: {n} students, {counts['fetched']} fetched, {counts['submitted']} submitted, "
          f"{counts['graded']} graded, {counts['feedback']} feedback returned (scores: {shown})")
    return 0 if ok and all(v == n for v in counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
