"""The repository's layout rules (issue 37): no script edits sys.path (the plugin is installed, benchmarks
are a package run with ``python -m``); commands/ holds console scripts only, each under 200 lines; no
function in benchmarks/ or scripts/ is longer than 80 lines."""
import ast
import glob
import os
import re

from conftest import REPO

SKIPPED = (".venv", ".git", "build", "__pycache__", "node_modules")


def python_files(*folders):
    for folder in folders or (REPO,):
        for root, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d not in SKIPPED and not d.endswith(".egg-info")]
            yield from (os.path.join(root, f) for f in files if f.endswith(".py"))


def test_no_python_file_edits_sys_path():
    edits = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*(\+=|=)")
    found = [f"{os.path.relpath(path, REPO)}:{n}" for path in python_files()
             for n, line in enumerate(open(path, encoding="utf-8"), 1) if edits.search(line)]
    assert not found, f"sys.path edited in {found}: import the installed package (or run benchmarks with python -m)"


def test_commands_are_console_scripts_under_200_lines():
    setup = open(os.path.join(REPO, "setup.py"), encoding="utf-8").read()
    scripts = set(re.findall(r"supmam_plugin\.commands\.(\w+):main", setup))
    commands = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "supmam_plugin", "commands", "*.py"))}
    assert commands - {"__init__"} == scripts  # every module is a console script, every console script a module
    long = {c: n for c in commands if (n := len(open(os.path.join(REPO, "supmam_plugin", "commands", f"{c}.py")).readlines())) >= 200}
    assert not long, f"commands over 199 lines (move the library code into the rooms below): {long}"


def test_no_function_in_benchmarks_or_scripts_is_over_80_lines():
    long = []
    for path in python_files("benchmarks", "scripts"):
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{os.path.relpath(path, REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, f"split into named steps: {long}"


def test_the_tests_import_nothing_from_benchmarks():
    """A benchmark prints figures; what a test needs lives in the package or in tests/ (a test may run a
    benchmark as a command, ``python -m benchmarks.NAME``)."""
    imports = re.compile(r"^\s*(from|import)\s+benchmarks\b")
    found = [f"{os.path.relpath(path, REPO)}:{n}" for path in python_files("tests")
             for n, line in enumerate(open(path, encoding="utf-8"), 1) if imports.search(line)]
    assert not found, found
