"""A non-editable install (``pip install .``) carries the recipes: ``supmam-recipes`` finds them in
the installed package, and fairseq-hydra-train runs them from there, away from this checkout."""
import os
import shutil
import site
import subprocess
import sys

from conftest import CPU_RUN, REPO, TINY_MODEL


def test_pip_install_carries_the_recipes(shared_tones, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # the new environment sees this one's packages (torch, fairseq, ...) but not this checkout
    new_site = next((venv / "lib").glob("python3*/site-packages"))
    (new_site / "base.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = str(venv / "bin" / "python")
    source = tmp_path / "source"  # pip builds in the source folder: a copy keeps the checkout clean
    for package in ("supmam_plugin", "manifests"):
        shutil.copytree(os.path.join(REPO, package), source / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "setup.py"), source)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    build = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", str(source)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    where = subprocess.run([str(venv / "bin" / "supmam-recipes"), "pretraining"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    recipes = where.stdout.strip().splitlines()[-1]
    assert recipes.startswith(str(new_site)) and os.path.isfile(os.path.join(recipes, "supmam.yaml")), where.stdout
    train = subprocess.run([
        python, "-m", "fairseq_cli.hydra_train", "--config-dir", recipes, "--config-name", "supmam",
        f"task.data={shared_tones}", "task.multi_label=false", f"checkpoint.save_dir={tmp_path / 'run'}",
        f"hydra.run.dir={tmp_path / 'hydra'}", "optimization.max_update=2", "dataset.batch_size=4",
        *TINY_MODEL, *[a for a in CPU_RUN], "common.user_dir=" + os.path.dirname(os.path.dirname(recipes)),  # the installed plugin
    ], cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert "num_updates" in log and os.path.isfile(tmp_path / "run" / "checkpoint_last.pt")
