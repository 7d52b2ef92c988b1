"""A study: units over (task, arm, seed), run a few at a time in plan order once the units they need
have finished, each finished unit written at once to a ledger that the next call resumes from (several
study processes may share one ledger file)."""
from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait


class Ledger:
    """A study's finished units, one JSON file: {"rows": {"task/arm/sN": row}}; a row counts only when
    its "sizes" equal its task's ``sizes`` (a change of budget starts those rows afresh)."""

    def __init__(self, path: str, sizes: dict[str, dict]):
        self.path, self.sizes, self.lock = path, sizes, threading.Lock()
        self.rows = self.read()

    def read(self) -> dict:
        if not os.path.isfile(self.path):
            return {}
        with open(self.path, encoding="utf-8") as f:
            return json.load(f)["rows"]

    def get(self, key: str):
        with self.lock:  # read again: another study process may have finished the unit meanwhile
            self.rows = self.read()
        row = self.rows.get(key)
        return row if row is not None and row.get("sizes") == self.sizes[key.split("/")[0]] else None

    def put(self, key: str, row: dict) -> None:
        """Write ``row`` into the file as it is now (rows other study processes wrote are kept: the file
        is locked, read, updated and replaced)."""
        import fcntl

        with self.lock:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.rows = self.read()
                self.rows[key] = {**row, "sizes": self.sizes[key.split("/")[0]], "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
                with open(self.path + ".tmp", "w", encoding="utf-8") as f:
                    json.dump({"rows": dict(sorted(self.rows.items()))}, f, indent=1)
                    f.write("\n")
                os.replace(self.path + ".tmp", self.path)


def run_units(plan: list, run_unit, workers: int) -> int:
    """Run ``plan`` ((task, arm, seed, needs) in order) with ``workers`` at a time: a unit starts, in
    plan order, once the units it needs have finished (a unit waiting holds no worker); one whose input
    failed fails without running. Returns how many failed (each is printed)."""
    pending, running, done, failed = list(plan), {}, {}, 0
    planned = {(task, arm, seed) for task, arm, seed, _ in pending}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for unit in [u for u in pending if all(n in done or n not in planned for n in u[3])]:
                if len(running) == workers:
                    break
                pending.remove(unit)
                task, arm, seed, needs = unit
                broken = [n for n in needs if done.get(n) is False]
                if broken:
                    print(f"[study] {task}/{arm}/{seed} FAILED: it needs {'/'.join(map(str, broken[0]))}, which failed",
                          flush=True)
                    done[(task, arm, seed)], failed = False, failed + 1
                    continue
                running[pool.submit(run_unit, task, arm, seed)] = (task, arm, seed)
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                try:
                    future.result()
                    done[key] = True
                except Exception as e:  # noqa: BLE001 - every unit is tried; the failures are listed
                    done[key], failed = False, failed + 1
                    print(f"[study] {'/'.join(map(str, key))} FAILED: {e}", flush=True)
    return failed
