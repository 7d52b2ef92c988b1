"""Importing the plugin registers every name and never opens a network connection."""
import subprocess
import sys

SCRIPT = r"""
import socket
def refuse(*args, **kwargs):
    raise RuntimeError("network access during import")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import supmam_plugin
from fairseq.tasks import TASK_REGISTRY
from fairseq.models import MODEL_REGISTRY
from fairseq.criterions import CRITERION_REGISTRY
names = [n for n in list(TASK_REGISTRY) + list(MODEL_REGISTRY) + list(CRITERION_REGISTRY) if n.startswith("supmam")]
print(" ".join(sorted(names)))
"""


def test_import_registers_names_offline():
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    registered = set(out.stdout.split())
    assert {"supmam_audio_classification", "supmam_pretraining"} <= registered
