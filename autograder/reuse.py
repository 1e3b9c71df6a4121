"""Spot a solution cell that hands in the course's own implementation of its exercise.

The `course` package, which every kernel imports, holds reference implementations of several
exercises (`ip_to_int`, `NatTable`, `recv_exactly`, ...): the course's peers and
`python -m course serve` use them. A learner can import one instead of writing it, and no check
can tell, because the behaviour is the reference's own. So the grader reads each solution cell
(here, in the trusted process, with `ast`: nothing runs) and names the course objects the cell
reaches that carry the name of something the instructor's solution of that cell defines. The
points stand; the summary lists the cell so that the instructor reads it.

This is a reading aid, not a wall: `importlib`, `getattr` with a computed name or a copied body
pass unseen.
"""
from __future__ import annotations

import ast
import threading
from functools import lru_cache
from pathlib import Path

# ast.parse is not safe to call from several threads at once in CPython 3.11 (up to 3.11.7 at least:
# "SystemError: AST constructor recursion depth mismatch", measured here with the grader's --jobs 8),
# and the grader reads submissions in several threads: one parse at a time.
_PARSING = threading.Lock()


def _parse(source: str) -> ast.Module:
    with _PARSING:
        return ast.parse(source)


def course_definitions() -> dict[str, frozenset[str]]:
    """Module name ("course.udp") -> names of the functions and classes it defines at top level,
    in the course package the kernels import (sandbox.course_package)."""
    from autograder.sandbox import course_package

    return _definitions(course_package())


@lru_cache(maxsize=4)
def _definitions(package: str) -> dict[str, frozenset[str]]:
    pkg = Path(package)
    out = {}
    for path in sorted(pkg.rglob("*.py")):
        parts = path.relative_to(pkg.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        try:
            tree = _parse(path.read_text())
        except (OSError, SyntaxError, ValueError):
            continue
        out[module] = frozenset(n.name for n in tree.body
                                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
    return out


def defined_names(source: str) -> set[str]:
    """Top-level functions and classes a cell defines."""
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError):
        return set()
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def course_aliases(sources: list[str]) -> dict[str, str]:
    """Local name -> the course module or object it is bound to by the imports in `sources`."""
    aliases: dict[str, str] = {}
    for source in sources:
        try:
            tree = _parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "course" or a.name.startswith("course."):
                        if a.asname:
                            aliases[a.asname] = a.name
                        else:
                            aliases["course"] = "course"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and (node.module == "course" or node.module.startswith("course.")):
                for a in node.names:
                    if a.name != "*":
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def reused(solution: str, learner: str, notebook_sources: list[str]) -> list[str]:
    """The course objects (dotted names) that the learner's cell reaches and that carry the name of
    something the solution cell defines. `notebook_sources`: every code cell of the notebook (for
    the imports)."""
    wanted = defined_names(solution)
    if not wanted:
        return []
    defs = course_definitions()
    aliases = course_aliases(notebook_sources + [learner])
    try:
        tree = _parse(learner)
    except (SyntaxError, ValueError):
        return []
    found: list[str] = []

    def course_object(path: str) -> bool:
        module, _, name = path.rpartition(".")
        return name in wanted and name in defs.get(module, ())

    for node in ast.walk(tree):
        path = None
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("course"):
            for a in node.names:
                if course_object(f"{node.module}.{a.name}"):
                    found.append(f"{node.module}.{a.name}")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in aliases:
            path = aliases[node.id]
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain[0] in aliases:
                path = ".".join([aliases[chain[0]], *chain[1:]])
        if path and course_object(path):
            found.append(path)
    return sorted(set(found))


def notes(source_nb, nb) -> list[str]:
    """One note per solution cell of the assembled notebook `nb` that hands in course objects
    named like what the instructor's solution of that cell defines."""
    from autograder.assemble import meta

    solutions = {meta(c)["grade_id"]: c.source for c in source_nb.cells
                 if meta(c).get("solution") and meta(c).get("grade_id") and c.get("cell_type") == "code"}
    sources = [c.source for c in nb.cells if c.get("cell_type") == "code"]
    out = []
    for cell in nb.cells:
        gid = meta(cell).get("grade_id")
        if cell.get("cell_type") == "code" and gid in solutions:
            found = reused(solutions[gid], cell.source, sources)
            if found:
                out.append(f"cell {gid} hands in the course's own {', '.join(found)} instead of code of its own "
                           "(points stand; read it)")
    return out
