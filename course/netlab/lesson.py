"""A lesson's lab demos, live or recorded: the one shape of the lab cells of 01, 03, 05 and 07.

A lab cell runs its demo live in a new lab and shows what happened. Where no lab can be built
(SetupError: user namespaces refused, as on Binder, in a container or in the grading sandbox) it
shows the recording of a live run instead, after one line that says why; 05's and 07's demos do the
same when a live run fails (a very busy machine). This module is that behaviour, once:

- `Fallback`: run a demo live, or else give its recording and the one line saying why (printed at
  once, or kept in the result, which prints it first); a refusal may be remembered for the rest
  of the process, so that later cells do not wait for a lab again;
- the recordings: one JSON file per lesson in course/data/, {"recorded", "kernel", "how",
  "demos": {name: what that demo's live run gave}}, written by `write_recording` (maintainers:
  `python -m course.<lesson> record`, as an ordinary user where a lab works) and read by
  `recording`, `made_on` and `recorded_result`;
- `LabRun`: a demo's result and the lines its cell prints (05 and 07: each lesson subclasses it);
- `source`: the first line of 01's and 03's tables: live, in which namespaces, or which recording;
- `main`: a lesson module's command line.

Standard library only, as all of course.netlab.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, ClassVar, TypeVar

from course.errors import PeerError, SetupError

__all__ = [
    "DATA",
    "FAILED_RUN",
    "Fallback",
    "LabRun",
    "recording",
    "made_on",
    "recorded_result",
    "write_recording",
    "source",
    "main",
]

DATA = Path(__file__).resolve().parent.parent / "data"  # course/data: shipped with the package
FAILED_RUN = "the live run failed, so this is the recording: {error}"
T = TypeVar("T")


class Fallback:
    """Live, or else the recording, for the demos of one lesson module:

        fallback = Fallback(say="recording shown, {why}")          # 01, 03: the line printed at once
        fallback = Fallback(remember_refusal=True, failed_runs=True)  # 05, 07: the run prints it first
        result = fallback.run(lambda: run_live(...), lambda why: the_recording(..., why))

    `run` calls live(); where it raises SetupError (no lab here), it gives recorded(why), `why`
    being the error's one sentence. With `remember_refusal`, a refusal is kept (`refused`) and
    later runs give the recording at once, until `forget()`. With `failed_runs`, a live run that
    fails (PeerError or OSError: the lab was built, a very busy machine) gives the recording too,
    `why` saying so; without it, the error is raised as it is. `say`, a format with {why}, is
    printed when the recording is given."""

    def __init__(self, *, say: str | None = None, remember_refusal: bool = False, failed_runs: bool = False):
        self.say = say
        self.remember_refusal = remember_refusal
        self.failed_runs = failed_runs
        self.refused: str | None = None

    def run(self, live: Callable[[], T], recorded: Callable[[str], T]) -> T:
        if self.refused is None:
            try:
                return live()
            except SetupError as exc:
                why = str(exc)
                if self.remember_refusal:
                    self.refused = why
            except (PeerError, OSError) as exc:
                if not self.failed_runs:
                    raise
                why = FAILED_RUN.format(error=exc)
        else:
            why = self.refused
        if self.say is not None:
            print(self.say.format(why=why))
        return recorded(why)

    def forget(self) -> None:
        """Try a live lab again at the next run (after the machine was fixed, say)."""
        self.refused = None


# ----------------------------------------------------------------------------------------------
# The recordings
# ----------------------------------------------------------------------------------------------
def recording(path: str | Path) -> dict:
    """A lesson's recording, read from its file (a new copy at each call)."""
    return json.loads(Path(path).read_text())


def made_on(data: dict) -> str:
    """When and where a recording was made: '2026-12-01 13:27 UTC on Linux 6.18.44'."""
    return f"{data['recorded']} on Linux {data['kernel']}"


def recorded_result(path: str | Path, name: str) -> dict:
    """The recorded result of demo `name` as its live run returned it, marked "capture":
    "recording", with "recorded" saying when and where (01's and 03's demos, which return dicts)."""
    data = recording(path)
    result = data["demos"][name]
    result["capture"] = "recording"
    result["recorded"] = made_on(data)
    return result


def write_recording(path: str | Path, how: str, demos: dict) -> Path:
    """Write a lesson's recording: `demos` {name: what its live run gave}, with when, on which
    kernel and `how` it was made (maintainers)."""
    data = {"recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "kernel": platform.release(), "how": how,
            "demos": demos}
    path = Path(path)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# A demo's result and what its cell prints (05, 07)
# ----------------------------------------------------------------------------------------------
@dataclass
class LabRun:
    """One demo's result: `evidence` (what neither timing nor port numbers change: the same in a
    live run and in the recording), `measured` (this run's times and figures), whether it ran
    live, and if not, why (one sentence) and when the recording was made.

    A lesson subclasses it, as a dataclass with one more field, named by DETAIL, for what its
    cells show besides (05: the captured segments; 07: the labelled connections), and says in
    DEMOS {name: (run(net) -> (evidence, measured, detail), show(run) -> lines)} what each demo
    does, in LAB which lab a live run is built in and in MADE_BY what made the recording."""

    demo: str
    live: bool
    evidence: dict
    measured: dict
    why: str = ""  # why this is a recording: one sentence (empty when live)
    recorded: str = ""  # when and on which kernel the recording was made

    DEMOS: ClassVar[dict[str, tuple[Callable, Callable]]] = {}
    DETAIL: ClassVar[str] = "detail"
    LAB: ClassVar[str] = "a lab network"
    MADE_BY: ClassVar[str] = "a live run"

    @classmethod
    def run_live(cls, name: str, lab) -> "LabRun":
        """Run demo `name` now in `lab` (a Lab not yet entered: built here, closed after); SetupError
        where no lab can be built."""
        run_demo, _ = cls.DEMOS[name]
        with lab as net:
            evidence, measured, detail = run_demo(net)
        return cls(name, True, evidence, measured, **{cls.DETAIL: detail})

    @classmethod
    def from_recording(cls, path: str | Path, name: str, why: str = "") -> "LabRun":
        """The recorded run of demo `name`."""
        data = recording(path)
        d = data["demos"][name]
        return cls(name, False, d["evidence"], d["measured"], why=why, recorded=f"on {made_on(data)}",
                   **{cls.DETAIL: d[cls.DETAIL]})

    def recorded_form(self) -> dict:
        """What the recording keeps of a live run (plain data)."""
        return {"evidence": self.evidence, "measured": self.measured, self.DETAIL: asdict(self)[self.DETAIL]}

    def lines(self) -> list[str]:
        out = [self.why] if self.why else []
        if self.live:
            out.append(f"live: a lab network built just now ({self.LAB}), captured on home's eth0")
        else:
            out.append(f"RECORDING of this demo, run live {self.recorded} ({self.MADE_BY})")
        return out + self.DEMOS[self.demo][1](self)

    def print(self) -> None:
        print("\n".join(self.lines()))


# ----------------------------------------------------------------------------------------------
# What 01's and 03's tables say first, and a lesson's command line
# ----------------------------------------------------------------------------------------------
def source(result: dict, hosts: tuple[str, ...], *facts: str) -> str:
    """Where a result comes from, in one line: live in the lab (its namespaces, `facts`, the time
    it took), or the recording and when it was made."""
    if result["capture"] == "live":
        parts = [f"{len(hosts)} network namespaces: {', '.join(hosts)}", *facts, f"{result['seconds']} s"]
        return f"live in the lab ({'; '.join(parts)})"
    return f"the recording, made live on {result['recorded']}"


def main(module: str, record: Callable[[], Path], argv: list[str] | None = None,
         show: Callable[[], None] | None = None) -> int:
    """`python -m <module> record` runs the lesson's demos live and rewrites its recording
    (maintainers, as an ordinary user where a lab works); with `show`, `python -m <module>` runs
    them and prints what the cells print."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["record"]:
        print(f"recorded in {record()}")
        return 0
    if not args and show is not None:
        show()
        return 0
    print(f"usage: python -m {module} {'[record]' if show else 'record'}   (record: runs the lab live and rewrites "
          f"the recording)", file=sys.stderr)
    return 2
