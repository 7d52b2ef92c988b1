"""The claims study's plan (supmam_plugin/experiments/claims.py, run by scripts/claims_study.py): every
arm is a real recipe with real options; every unit starts after what it reads; its ledger (a row counts
only at its task's sizes) and its equal-compute arm. Its steps are supmam-demo's runs, which
tests/test_demo.py and tests/test_sound_events.py run for real."""
import json
import os

import pytest
from omegaconf import OmegaConf

from supmam_plugin.evaluation.results import has_clap_target
from supmam_plugin.experiments import claims, claims_report, study
from supmam_plugin.recipes.compose import compose_recipe


def plan_of(**settings):
    return claims.units(claims.StudySettings(ledger="", **settings))


@pytest.mark.parametrize("arm", sorted(claims.ARMS))
def test_every_arm_is_its_recipe_with_the_ablations_options_applied(arm):
    recipe, extra, _ = claims.ARMS[arm]
    plain = compose_recipe("pretraining", recipe)
    cfg = compose_recipe("pretraining", recipe, list(extra or []))  # an unknown key would raise here
    changed = {o.split("=")[0]: o.split("=")[1] for o in extra or []}
    for key, value in changed.items():
        assert str(OmegaConf.select(cfg, key)).lower() == value.lower() != str(OmegaConf.select(plain, key)).lower()


def test_units_wait_for_what_they_read_and_ablations_run_on_the_sound_events_only():
    plan = plan_of(tasks=list(claims.TASKS), arms=["table", "ablation"], seeds=[1, 2, 3])
    position = {(t, a, s): i for i, (t, a, s, _) in enumerate(plan)}
    assert len(position) == len(plan)  # no unit twice
    for task, arm, seed, needs in plan:
        for need in needs:
            assert position[need] < position[(task, arm, seed)]  # submitted earlier: no worker waits on a later one
        if arm in claims.ARMS and has_clap_target(claims.ARMS[arm][0]):
            assert (task, "teacher", seed) in needs
        if claims.ARMS.get(arm, ("", [], ""))[2] == "ablation":
            assert task == "sound_events"
    for task in claims.TASKS:
        table = {a for t, a, s, _ in plan if t == task and s == 1}
        assert {"teacher", "scratch", "audiomae", "mam_clap", "supmam", "supmam_clap",
                "audiomae_teacher_compute"} <= table
        assert sum(1 for t, a, _, _ in plan if t == task and a == "mfcc") == 1


def test_ledger_counts_rows_at_their_tasks_sizes_and_audiomae_gets_the_teachers_compute(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = study.Ledger(str(path), claims.SIZES)
    ledger.put("sound_events/teacher/s1", {"seconds": {"clap_teacher_s1": 300.0, "teacher_cache_s1": 100.0}})
    ledger.put("sound_events/audiomae/s1", {"seconds": {"pretrain": 800.0, "finetune": 300.0}})
    stale = {"seconds": {"pretrain": 1.0}, "sizes": {**claims.SIZES["sound_events"], "pretrain_updates": 600}}
    rows = json.load(open(path))["rows"]
    json.dump({"rows": {**rows, "sound_events/supmam/s1": stale}}, open(path, "w"))
    reread = study.Ledger(str(path), claims.SIZES)
    assert reread.get("sound_events/supmam/s1") is None  # another budget: run again
    assert reread.get("sound_events/audiomae/s1")["seconds"]["pretrain"] == 800.0
    made = claims.Study.__new__(claims.Study)
    made.ledger = reread
    # 2000 updates x (1 + (300 + 100) / 800) = 3000
    assert made.teacher_compute_updates("sound_events", 1) == 3000


def test_welch_verdicts_match_a_hand_computed_t_and_say_pending_below_two_seeds():
    # means 2 and 5, sample variances 1 and 1: t = -3 / sqrt(1/3 + 1/3) = -3.674, 4 degrees of freedom
    lower = claims_report.welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert lower["difference"] == pytest.approx(-3.0)
    assert lower["t"] == pytest.approx(-3.0 / (2 / 3) ** 0.5)
    assert lower["p"] < 0.05 and lower["verdict"] == "does not hold here"
    assert claims_report.welch([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])["verdict"] == "holds"
    # t = -1 / sqrt(2/2 + 2/2) = -0.707: inside the spread
    spread = claims_report.welch([1.0, 3.0], [2.0, 4.0])
    assert spread["t"] == pytest.approx(-0.5 ** 0.5) and spread["verdict"] == "within the spread"
    assert claims_report.welch([1.0], [2.0, 3.0])["verdict"] == "pending"


def test_verdicts_read_each_claims_rows_and_leave_ablations_to_their_task():
    rows = {f"sound_events/{arm}/s{s}": {"finetuned": {"test": base + s}, "probe": {"test": 30.0 + s}}
            for arm, base in (("mam_clap", 40.0), ("audiomae", 30.0), ("mam_clap_mask0.8", 39.0)) for s in (1, 2, 3)}
    rows.update({f"spoken_words/{arm}/s1": {"finetuned": {"test": 70.0}} for arm in ("mam_clap", "mam_clap_mask0.8")})
    found = {(v["task"], v["claim"], v["measure"]): v for v in claims_report.verdicts(rows)}
    assert found[("sound_events", "mam_clap > audiomae", "finetuned")]["verdict"] == "holds"
    assert found[("sound_events", "mam_clap > audiomae", "finetuned")]["difference"] == pytest.approx(10.0)
    assert found[("sound_events", "mam_clap > audiomae", "probe")]["verdict"] == "within the spread"  # equal
    assert found[("sound_events", "mam_clap > mam_clap_mask0.8", "finetuned")]["n"] == (3, 3)
    assert not any(task == "spoken_words" and "mask0.8" in claim for task, claim, _ in found)


def test_only_keeps_the_named_rows_in_their_order():
    cfg = dict(tasks=list(claims.TASKS), arms=["table", "ablation"], seeds=[1, 2])
    plan = plan_of(**cfg, only=["supmam_rec", "supmam_cls"])
    full = plan_of(**cfg)
    assert [u[:3] for u in plan] == [u[:3] for u in full if u[1] in ("supmam_rec", "supmam_cls")]
    assert {(t, s) for t, _, s, _ in plan} == {("sound_events", 1), ("sound_events", 2)}


def test_teacher_strength_units_wait_for_their_teacher_and_each_clap_for_the_classifier_it_starts_from():
    plan = plan_of(tasks=list(claims.TASKS), arms=["teacher_strength"], seeds=[1, 2])
    position = {(t, a, s): i for i, (t, a, s, _) in enumerate(plan)}
    assert {t for t, _, _, _ in plan} == set(claims.STRENGTH_TASKS)
    assert {a for _, a, s, _ in plan if s == 1} == {f"{k}@{n}" for n in claims.TEACHERS for k in ("teacher", "mam_clap")} \
        | {f"reference@{a}" for a in claims.STRENGTH_REFERENCES}
    for task, arm, seed, needs in plan:
        for need in needs:
            assert position[need] < position[(task, arm, seed)]
        kind, name = arm.split("@")
        if kind == "reference":
            assert name in claims.ARMS and not needs
        if kind == "mam_clap":
            assert needs == [(task, f"teacher@{name}", seed)]
        elif name.startswith("clap_from_"):
            assert needs == [(task, f"teacher@{name[len('clap_from_'):]}", seed)]
            assert name[len("clap_from_"):] in claims.TEACHERS  # a CLAP starts from a teacher of the curve
    # seed by seed: every unit of seed 1 before any of seed 2
    assert max(i for (_, _, s), i in position.items() if s == 1) < min(i for (_, _, s), i in position.items() if s == 2)


def test_strength_report_pairs_each_teacher_with_its_student_against_the_references_of_its_own_code(tmp_path):
    rows = {"sound_events/reference@audiomae/s1": {"finetuned": {"test": 43.0}},
            "sound_events/reference@audiomae/s2": {"finetuned": {"test": 44.0}},
            "sound_events/audiomae/s1": {"finetuned": {"test": 10.0}},  # the table's row: another code state, not read
            "sound_events/teacher@pool_captions/s1": {"zero_shot": 18.0, "probe": {"test": 34.0}},
            "sound_events/mam_clap@pool_captions/s1": {"finetuned": {"test": 38.0}, "probe": {"test": 35.0}},
            "sound_events/teacher@classifier_pool/s1": {"finetuned": {"test": 33.0}, "probe": {"test": 33.5}},
            "sound_events/mam_clap@classifier_pool/s1": {"finetuned": {"test": 40.0}, "probe": {"test": 36.0}},
            "sound_events/mam_clap@classifier_pool/s2": {"finetuned": {"test": 42.0}, "probe": {"test": 37.0}}}
    found = {r["name"]: r for r in claims_report.strength_rows(rows)}
    assert set(found) == {"pool_captions", "classifier_pool"}
    assert found["pool_captions"]["teacher_probe"] == [34.0] and found["pool_captions"]["student_finetuned"] == [38.0]
    assert found["classifier_pool"]["teacher_finetuned"] == [33.0]
    assert found["classifier_pool"]["student_finetuned"] == [40.0, 42.0]
    path = tmp_path / "ledger.json"
    json.dump({"rows": rows}, open(path, "w"))
    table = claims_report.strength_report(str(path))
    line = next(x for x in table.splitlines() if x.startswith("| classifier_pool"))
    assert "41.0 +- 1.4 (40.0, 42.0)" in line and "-2.5, t = -2.24" in line  # Welch against AudioMAE 43.5 +- 0.7
    png = claims_report.draw_strength(str(path), str(tmp_path / "curve.png"))
    assert os.path.getsize(png) > 10000


def test_labelled_table_reads_the_labelled_pool_and_its_clap_rows_wait_for_laion_claps_recipe(tmp_path):
    plan = plan_of(tasks=list(claims.TASKS), arms=["teacher_strength", "labelled_table"], seeds=[1])
    position = {(t, a, s): i for i, (t, a, s, _) in enumerate(plan)}
    teacher = ("sound_events", f"teacher@{claims.LABELLED_POOL_TEACHER}", 1)
    for arm in claims.LABELLED_TABLE_ARMS:
        task, name, seed, needs = plan[position[("sound_events", f"labelled_pool@{arm}", 1)]]
        clap = has_clap_target(claims.ARMS[arm][0])
        assert needs == ([teacher] if clap else []) and (not clap or position[teacher] < position[(task, name, seed)])
    # every row of the table is a unit of the plan (or the baseline)
    for _, arm in claims_report.LABELLED_TABLE_ROWS:
        assert ("sound_events", arm, 1) in position
    rows = {"sound_events/reference@audiomae/s1": {"finetuned": {"test": 43.0}, "probe": {"test": 34.0}},
            "sound_events/reference@audiomae/s2": {"finetuned": {"test": 45.0}, "probe": {"test": 35.0}},
            "sound_events/labelled_pool@supmam_clap/s1": {"finetuned": {"test": 47.0}, "probe": {"test": 40.0}},
            "sound_events/labelled_pool@supmam_clap/s2": {"finetuned": {"test": 49.0}, "probe": {"test": 41.0}},
            "sound_events/mfcc/s0": {"baseline": {"test": 33.7}}}
    path = tmp_path / "ledger.json"
    json.dump({"rows": rows}, open(path, "w"))
    table = claims_report.labelled_table_report(str(path)).splitlines()
    line = next(x for x in table if x.startswith("| SupMAM-CLAP"))
    # t = 4 / sqrt(2/2 + 2/2) = 2.83 on 2 degrees of freedom: p = 0.106
    assert "48.0 +- 1.4 (47.0, 49.0)" in line and "+4.0 (within the spread, p = 0.106)" in line
    assert "| MFCC + logistic regression | | 33.7 | | |" in table


def test_longer_finetuning_waits_for_the_row_whose_encoder_it_fine_tunes():
    plan = plan_of(tasks=list(claims.TASKS), arms=["teacher_strength", "finetune_length"], seeds=[1])
    position = {(t, a, s): i for i, (t, a, s, _) in enumerate(plan)}
    for arm in claims.LONGER_FINETUNE_ARMS:
        unit = ("sound_events", f"longer_finetune@{arm}", 1)
        assert plan[position[unit]][3] == [("sound_events", arm, 1)] and position[("sound_events", arm, 1)] < position[unit]


def test_a_unit_waiting_for_its_input_holds_no_worker_and_a_failed_input_fails_its_readers(capsys):
    """run_units with 2 workers: B needs A (slow), C needs nothing: C starts while A runs (B waits
    without a worker), B only after A; D needs the failing E and never runs."""
    import threading
    import time

    events, lock = [], threading.Lock()

    def run_unit(task, arm, seed):
        with lock:
            events.append(("start", arm))
        time.sleep({"A": 0.3}.get(arm, 0.01))
        with lock:
            events.append(("end", arm))
        if arm == "E":
            raise RuntimeError("E broke")

    plan = [("t", "A", 1, []), ("t", "B", 1, [("t", "A", 1)]), ("t", "C", 1, []),
            ("t", "E", 1, []), ("t", "D", 1, [("t", "E", 1)])]
    failed = study.run_units(plan, run_unit, workers=2)
    assert failed == 2  # E, and D which needs it
    assert ("start", "D") not in events
    assert events.index(("start", "C")) < events.index(("end", "A")) < events.index(("start", "B"))
    out = capsys.readouterr().out
    assert "t/E/1 FAILED: E broke" in out and "t/D/1 FAILED: it needs t/E/1, which failed" in out


def test_two_study_processes_keep_each_others_rows(tmp_path):
    """Two ledgers on one file (two study processes): each put keeps the other's rows, each get sees them."""
    path = str(tmp_path / "ledger.json")
    first, second = study.Ledger(path, claims.SIZES), study.Ledger(path, claims.SIZES)
    first.put("sound_events/audiomae/s1", {"finetuned": {"test": 45.0}})
    second.put("sound_events/supmam/s1", {"finetuned": {"test": 43.0}})
    assert set(json.load(open(path))["rows"]) == {"sound_events/audiomae/s1", "sound_events/supmam/s1"}
    assert second.get("sound_events/audiomae/s1")["finetuned"]["test"] == 45.0
    assert first.get("sound_events/supmam/s1")["finetuned"]["test"] == 43.0
