"""Docs that cannot drift (issue 37): every pointer to a section in code, recipes and docs (the
README or a docs page, then a colon or ", section", then the section's name) names a heading (or a
bold lead-in) that exists, and every Markdown link to a file or anchor of the repository resolves."""
import glob
import os
import re

from conftest import REPO

POINTER = re.compile(r"(README|docs/[A-Za-z_]+\.md)(?::|, section) ([A-Z][^)\"';,\n]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SKIP = (".venv", ".git", "supmam_plugin.egg-info", "outputs", "data", "demo_output")


def repo_files(*patterns):
    for pattern in patterns:
        for path in glob.glob(os.path.join(REPO, "**", pattern), recursive=True):
            if not os.path.relpath(path, REPO).startswith(SKIP):
                yield path


def sections(markdown_path) -> set[str]:
    """The headings of a Markdown file and its bold lead-ins ("**Precision.** ...")."""
    found = set()
    with open(markdown_path, encoding="utf-8") as f:
        for line in f:
            heading = re.match(r"^#+\s+(.+?)\s*$", line)
            lead = re.match(r"^\*\*(.+?)\.?\*\*", line)
            for match in (heading, lead):
                if match:
                    found.add(match.group(1).strip())
    return found


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_pointer_to_a_section_names_one_that_exists():
    broken = []
    for path in repo_files("*.py", "*.yaml", "*.md"):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for match in POINTER.finditer(text):
            document = os.path.join(REPO, "README.md" if match.group(1) == "README" else match.group(1))
            name = match.group(2).strip().rstrip(".")
            if not os.path.isfile(document) or not any(s == name or s.startswith(name) for s in sections(document)):
                broken.append(f"{os.path.relpath(path, REPO)}: {match.group(0)!r}")
    assert not broken, "pointers to sections that do not exist:\n" + "\n".join(broken)


def test_every_markdown_link_into_the_repository_resolves():
    broken = []
    for path in repo_files("*.md"):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            if not os.path.exists(linked):
                broken.append(f"{os.path.relpath(path, REPO)}: {target} (no such file)")
            elif anchor and linked.endswith(".md") and anchor not in {github_anchor(h) for h in sections(linked)}:
                broken.append(f"{os.path.relpath(path, REPO)}: {target} (no such heading)")
    assert not broken, "links that do not resolve:\n" + "\n".join(broken)


def test_the_checks_catch_a_pointer_and_a_link_that_drifted(tmp_path):
    """The two checks above would fail: a section name and an anchor that no heading has."""
    headings = sections(os.path.join(REPO, "docs", "pretraining.md"))
    assert "Teachers" in headings and "Precision" in headings and "The demo" not in headings
    assert github_anchor("Loading checkpoints safely") == "loading-checkpoints-safely"
    assert "no-such-heading" not in {github_anchor(h) for h in headings}
