"""The layering of docs/ARCHITECTURE.md, enforced (issue 37): import-linter's contracts in
.importlinter (a room imports only the floors below it; rooms of one floor do not import each other;
core/ imports no fairseq) hold for the package as it is."""
import os
import subprocess

from conftest import REPO, VENV_BIN


def test_the_floors_hold_and_core_imports_no_fairseq():
    done = subprocess.run([os.path.join(VENV_BIN, "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout
