"""The project's own promises: one list of packages, one test command, no fixed ports."""
import re
import tomllib

from conftest import REPO


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_and_pyproject_name_the_same_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = set(map(normalise, project["dependencies"] + project["optional-dependencies"]["test"]))
    conda = set()
    text = (REPO / "environment.yml").read_text()
    for line in text[text.index("dependencies:") :].splitlines():
        m = re.match(r"^\s{2}- (\S.*)$", line)
        if m and not m.group(1).startswith(("python", "pip")):
            conda.add(normalise(m.group(1)))
    assert conda == declared, f"only in environment.yml: {conda - declared}; only in pyproject.toml: {declared - conda}"


def test_pins_the_issue_asks_for():
    text = (REPO / "pyproject.toml").read_text()
    for pin in ('"nbgrader==0.9.6"', '"jupyterlab>=4.4,<5"', '"notebook>=7.4,<8"', '"ipywidgets>=8,<9"', 'requires-python = ">=3.11"'):
        assert pin in text


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


FIXED_PORT = re.compile(r"""(bind|connect|create_connection)\(\s*\(?\s*["'][^"']*["']\s*,\s*[1-9][0-9]{2,4}\s*\)""")


def test_no_fixed_port_in_code_tests_or_notebooks():
    offenders = []
    for folder in ("course", "autograder", "solutions", "notebooks", "tests"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix not in (".py", ".ipynb") or ".ipynb_checkpoints" in path.parts:
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if FIXED_PORT.search(line.replace('\\"', '"')) and "fixed-port-ok" not in line:
                    offenders.append(f"{path.relative_to(REPO)}:{n}")
    assert not offenders, f"literal ports in bind/connect (use port 0): {offenders}"


def test_tool_dependencies_live_in_extras_not_in_the_learners_environment():
    """ruff, jupyterhub and playwright are for developers and instructors: extras, never what a
    learner installs (pyproject's dependencies, environment.yml)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) <= {"test", "class", "dev"}, f"unknown extras {set(extras)}"
    assert any(r.startswith("jupyterhub==") for r in extras["class"]), "the hub's tested version is pinned in [class]"
    learner = " ".join(project["dependencies"]) + (REPO / "environment.yml").read_text()
    for tool in ("ruff", "jupyterhub", "playwright"):
        assert tool not in learner, f"{tool} is in the learner's environment"


def test_every_glossary_term_is_used_in_the_notebook_the_glossary_names():
    """README's bilingual glossary: each Chinese term appears in the notebook it names (its first use)."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Glossary"):].split("\n## ")[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and not line.startswith("| 中文")]
    assert len(rows) >= 10, "the glossary lost its rows"
    for cells in rows:
        terms = [t.strip() for t in cells[0].split("/")]
        where = cells[3].strip()[:2]
        (notebook,) = (REPO / "solutions").glob(f"{where}-*/*.ipynb")
        text = notebook.read_text()
        missing = [t for t in terms if t not in text]
        assert not missing, f"glossary terms {missing} do not appear in {notebook.parent.name}, where README says they are first used"


def test_every_course_module_says_what_it_exports():
    """`__all__` in every module of the course: each name exists, and every name a notebook imports
    from a module is in that module's `__all__` (its public face to the learner)."""
    import ast
    import importlib
    import importlib.util
    import json
    import pkgutil

    import course

    for info in pkgutil.walk_packages(course.__path__, "course."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), f"{info.name} has no __all__"
        assert all(hasattr(module, n) for n in module.__all__), f"{info.name}.__all__ names what it lacks"
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            try:
                tree = ast.parse("".join(cell["source"]))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course."):
                    exported = importlib.import_module(node.module).__all__
                    # a submodule (from course.checks import udp as check) is exported by being one
                    missing = [a.name for a in node.names if a.name not in exported
                               and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
                    assert not missing, f"{path.parent.name} imports {missing} from {node.module}, which are not in its __all__"
