"""The demo's pipeline (``supmam-demo`` is its command line): for each seed, pretrain a small ViT with
each method, fine-tune every pretrained encoder and the same classifier from scratch, probe them, and
score the baselines; results.json after every seed, the result line, then the pictures.

Independent runs go to a second lane (a thread starting its own fairseq processes) while the method's
chain runs in this one: a tiny model gains little from a second thread but all from a second core.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from ..evaluation.results import has_clap_target, mean_std
from ..recipes.compose import method_facts
from .clap_teacher import caption_split
from .demo_result import result_line
from .fairseq_runs import console_script, run_logged
from .folders import LABELLED_POOL_SPLIT, check_clips, chance_score, read_folders
from .probes import linear_probes, mfcc_row, progress_only
from .runs import all_labels_classifier, finetune_and_score, finetune_overrides, hydra_train, pretrain_overrides, \
    split_score, stored_rows
from .settings import SMALL_FINETUNING, Budget, ExperimentError, Folders, TeacherSettings, Workspace
from .teacher_recipes import TEACHER_RECIPES, teacher_row, teacher_targets


@dataclass
class DemoSettings:
    """What supmam-demo runs (its flags, docs/demo.md)."""

    data: str = os.path.join("data", "demo")
    pretrain_data: str | None = None  # default: data
    methods: list[str] = field(default_factory=lambda: ["supmam"])
    seeds: list[int] = field(default_factory=lambda: [1])
    out: str = "demo_output"
    setting: str = "auto"  # labelled-pool, unlabelled-pool or auto
    frames: int | None = None  # default: folders.frames_for(data)
    multi_label: bool = False  # forced; else when a clip has several classes
    also_score: list[str] = field(default_factory=list)
    workers: int = 1
    reuse: bool = False
    verbose: bool = False
    budget: Budget = field(default_factory=Budget)
    teacher: TeacherSettings = field(default_factory=TeacherSettings)



def checked_teacher(teacher: TeacherSettings, folders: Folders, methods: list[str]) -> TeacherSettings:
    """The teacher settings with model.teacher filled in (the teacher recipe's, else the one given, else
    the first CLAP method's recipe's); contradictions refused."""
    recipe = teacher.recipe
    clap_methods = [m for m in methods if has_clap_target(m)]
    if teacher.name is None:
        teacher = replace(teacher, name=method_facts(clap_methods[0])["teacher"] if clap_methods else "laion_clap")
    if recipe is None and teacher.name == "clap" and not teacher.checkpoint:
        recipe = "pool-captions"  # what --teacher clap alone has always trained
    if recipe and teacher.checkpoint:
        raise ExperimentError("--teacher-recipe trains a teacher; --teacher-checkpoint gives one: use one of them")
    if recipe in ("labelled-pool-classifier", "laion-clap") and folders.setting != "labelled-pool":
        raise ExperimentError(f"--teacher-recipe {recipe} trains on every pretraining clip's labels: it needs the "
                              f"labelled-pool setting ({folders.pretrain_data} with a {LABELLED_POOL_SPLIT} split)")
    name = TEACHER_RECIPES[recipe] if recipe else teacher.name
    if name not in ("laion_clap", "clap") and not teacher.checkpoint and not recipe:
        raise ExperimentError(f"--teacher {name} needs --teacher-checkpoint")
    return TeacherSettings(name=name, checkpoint=teacher.checkpoint, recipe=recipe, start=teacher.start)


def new_result(s: DemoSettings, folders: Folders, teacher: TeacherSettings) -> dict:
    """results.json before anything ran: what runs, on what, at what sizes."""
    budget = s.budget
    result = {"methods": list(s.methods), "seeds": list(s.seeds), "setting": folders.setting,
              "teacher_recipe": teacher.recipe,
              "teacher": "trained here" if teacher.recipe else
              (teacher.checkpoint or os.environ.get("SUPMAM_CLAP_CHECKPOINT") or "random"),
              "metric": folders.metric, "multi_label": folders.multi_label, "frames": folders.frames,
              "also_score": list(folders.also_score), "teacher_name": teacher.name, "data": folders.data,
              "pretrain_data": folders.pretrain_data, "pretrain_split": folders.split,
              "pretrain_updates": budget.pretrain_updates, "finetune_updates": budget.finetune_updates,
              "finetune_overrides": SMALL_FINETUNING, "chance": chance_score(folders.data, folders.multi_label),
              "finetuned": {}, "linear_probe": {}, "seconds": {}}
    if teacher.recipe:
        result["teacher_updates"] = budget.teacher_updates
        if teacher.recipe != "pool-captions":
            result["teacher_start"] = teacher.start
            result["mae_updates"] = budget.mae_updates or budget.pretrain_updates
    return result


def write_results(out: str, result: dict) -> str:
    """(Re)write OUT/results.json atomically; returns its path."""
    path = os.path.join(out, "results.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def summarise(result: dict) -> None:
    """Fill result["summary"]: mean +- std over seeds of each method's fine-tuned test and train
    accuracy and linear-probe test accuracy (from the per-seed rows)."""
    summary = {}
    for name, per_seed in result["finetuned"].items():
        summary[name] = {"finetuned_test": mean_std(r["test"] for r in per_seed.values()),
                         "finetuned_train": mean_std(r["train"] for r in per_seed.values())}
    for name, per_seed in result.get("linear_probe", {}).items():
        summary.setdefault(name, {})["probe_test"] = mean_std(r["test"] for r in per_seed.values())
    result["summary"] = summary


class InlineExecutor:
    """``submit`` runs the call at once (one lane: ``workers=1``); the Future API of ThreadPoolExecutor."""

    def submit(self, fn, *args, **kwargs) -> Future:
        done = Future()
        done.set_result(fn(*args, **kwargs))
        return done

    def shutdown(self) -> None:
        pass


def all_labels_bar(ws: Workspace, budget: Budget, folders: Folders, seed: int) -> dict:
    """The labelled-pool setting's bar, every label the method saw and no pretraining: the classifier
    from scratch on every labelled pretraining clip, scored on the test split:
    {"classifier": (checkpoint, seconds, reused), "test": score}."""
    classifier = all_labels_classifier(ws, budget, folders, seed)
    scored = split_score(ws, f"classifier_all_labels_s{seed}", folders.data, classifier[0], "test", folders.metric,
                         reuse=classifier[2])
    print(f"[demo] classifier_all_labels_s{seed}: from scratch on every labelled pretraining clip, held-out "
          f"test {folders.metric} {scored['score']:.1f}", flush=True)
    return {"classifier": classifier, "test": scored["score"]}


class DemoRun:
    """One supmam-demo call: its settings, folders, workspace, teacher, and the result it fills."""

    def __init__(self, s: DemoSettings):
        self.s = s
        self.folders = read_folders(s.data, s.pretrain_data, s.setting, s.frames, s.multi_label, s.also_score)
        self.ws = Workspace(os.path.abspath(s.out), s.verbose, s.reuse)
        os.makedirs(os.path.join(self.ws.out, "logs"), exist_ok=True)
        self.teacher = checked_teacher(s.teacher, self.folders, s.methods)
        self.clap = any(has_clap_target(m) for m in s.methods)
        self.finetune = finetune_overrides(s.budget, self.folders.data, self.folders)
        self.made_teacher = None  # teacher_targets' dict: one for all seeds, or one per seed when trained here

    def check(self) -> None:
        f = self.folders
        if self.teacher.recipe == "pool-captions" and self.clap:
            caption_split(f.pretrain_data)  # refuses a folder with no captioned pool before anything runs
        check_clips(f.data, ["train", "valid", "test", *f.also_score], f.pretrain_data, f.split)

    def log_quietly(self):
        return print if self.ws.verbose else progress_only

    def seed_teacher(self, seed: int, bar: Future | None, side, result: dict) -> Future | None:
        """The CLAP methods' teacher for ``seed`` (made once, or for each seed when trained here);
        the future of its own scores when trained here."""
        if not self.clap or (self.made_teacher is not None and not self.made_teacher["trained"]):
            return None
        needs_bar = self.teacher.recipe and self.teacher.start == "scratch" and bar is not None
        self.made_teacher = teacher_targets(self.ws, self.s.budget, self.teacher, self.folders, seed,
                                            classifier=bar.result()["classifier"] if needs_bar else None)
        result["seconds"].update(self.made_teacher["seconds"])
        if self.made_teacher["trained"]:
            return side.submit(teacher_row, self.ws, self.folders, self.made_teacher)
        return None

    def pretrain(self, seed: int, result: dict) -> tuple[dict, dict]:
        """Each method pretrained for ``seed``: ({method: checkpoint_last.pt}, {method: reused})."""
        pretrained, reused = {}, {}
        for method in self.s.methods:
            name = f"pretrain_{method}_s{seed}"
            clap = has_clap_target(method)
            save_dir, reused[method], result["seconds"][name] = hydra_train(
                self.ws, name, "pretraining", method,
                pretrain_overrides(method, self.s.budget, self.folders, seed, self.made_teacher if clap else None),
                reuse=self.s.reuse and (not clap or self.made_teacher["reused"]))
            pretrained[method] = os.path.join(save_dir, "checkpoint_last.pt")
        return pretrained, reused

    def run_seed(self, seed: int, side, result: dict) -> None:
        ws, folders = self.ws, self.folders
        bar = side.submit(all_labels_bar, ws, self.s.budget, folders, seed) \
            if folders.setting == "labelled-pool" else None
        scratch = side.submit(finetune_and_score, ws, f"finetune_scratch_s{seed}", folders, "", seed, self.finetune,
                              self.s.reuse)
        teacher_scored = self.seed_teacher(seed, bar, side, result)
        pretrained, reused = self.pretrain(seed, result)
        for method, start_from in pretrained.items():
            name = f"finetune_{method}_s{seed}"
            row, result["seconds"][name] = finetune_and_score(ws, name, folders, start_from, seed, self.finetune,
                                                              reused[method])
            result["finetuned"].setdefault(method, {})[str(seed)] = row
        row, result["seconds"][f"finetune_scratch_s{seed}"] = scratch.result()
        result["finetuned"].setdefault("scratch", {})[str(seed)] = row
        if bar is not None:
            made = bar.result()
            result["seconds"][f"classifier_all_labels_s{seed}"] = made["classifier"][1]
            result.setdefault("all_labels", {})[str(seed)] = {"test": made["test"]}
        if teacher_scored is not None:
            result.setdefault("clap_teacher", {})[str(seed)] = teacher_scored.result()
        summarise(result)
        write_results(ws.out, result)  # kept even if what follows fails
        self.probe_seed(seed, pretrained, reused, result)

    def probe_seed(self, seed: int, pretrained: dict, reused: dict, result: dict) -> None:
        start = time.time()
        data, multi_label = self.folders.data, self.folders.multi_label
        print(f"[demo] linear probes, seed {seed} (scikit-learn logistic regression, C chosen on valid)", flush=True)
        probes = stored_rows(
            self.ws.log(f"linear_probes_s{seed}").replace(".log", ".json"),
            {"data": data, "checkpoints": pretrained, "seed": seed, "multi_label": multi_label},
            self.s.reuse and all(reused[m] for m in self.s.methods),
            lambda: linear_probes(data, pretrained, seed, multi_label, log=self.log_quietly()))
        for name, row in probes.items():
            result["linear_probe"].setdefault(name, {})[str(seed)] = row
        result["seconds"][f"linear_probes_s{seed}"] = round(time.time() - start, 1)
        summarise(result)
        write_results(self.ws.out, result)

    def pictures(self, result: dict) -> None:
        """The first seed's pictures (a failure is reported and loses nothing)."""
        first, methods = self.s.seeds[0], self.s.methods
        spectrogram = [m for m in methods if not has_clap_target(m)]
        clap_methods = [m for m in methods if has_clap_target(m)]
        runs = {"reconstruction": f"pretrain_{spectrogram[0]}_s{first}" if spectrogram else None,
                "similarity": f"pretrain_{clap_methods[0]}_s{first}" if clap_methods else None,
                "curves": [*[f"pretrain_{m}_s{first}" for m in methods],
                           *[f"finetune_{m}_s{first}" for m in [*methods, "scratch"]]]}
        problems = draw(self.ws.out, self.folders.data, self.ws.verbose, runs)
        for problem in problems:
            print(f"[demo] picture not drawn: {problem}", flush=True)
        if problems:
            result["picture_problems"] = problems
            write_results(self.ws.out, result)


def run(s: DemoSettings) -> dict:
    """The whole demo (module docstring); returns what results.json holds."""
    demo = DemoRun(s)
    demo.check()
    f = demo.folders
    print(f"[demo] {f.data}: {'multi-label: mAP' if f.multi_label else 'single-label: accuracy'}, {f.frames} fbank "
          f"frames per clip; {f.setting.replace('-', ' ')} setting: pretraining on {f.pretrain_data} {f.split}",
          flush=True)
    result = new_result(s, f, demo.teacher)
    side = ThreadPoolExecutor(max_workers=1) if s.workers > 1 else InlineExecutor()
    print("[demo] MFCC baseline (MFCC statistics + logistic regression, C chosen on valid)", flush=True)
    mfcc = side.submit(stored_rows, demo.ws.log("mfcc_baseline").replace(".log", ".json"),
                       {"data": f.data, "multi_label": f.multi_label}, s.reuse,
                       lambda: mfcc_row(f.data, f.multi_label, log=demo.log_quietly()))
    for seed in s.seeds:
        demo.run_seed(seed, side, result)
    side.shutdown()
    result["mfcc_baseline"] = mfcc.result()
    write_results(demo.ws.out, result)
    print(result_line(result), flush=True)  # before the pictures: a failure there loses nothing
    demo.pictures(result)
    return result


def draw(out: str, data: str, verbose: bool, runs: dict | None = None) -> list[str]:
    """The pictures; returns the problems met (each picture is tried, a failure loses nothing else).
    ``runs``: {"reconstruction": pretraining run with the spectrogram target or None, "similarity": one
    with the CLAP target or None, "curves": [run names]} (default: the first seed of SupMAM and
    SupMAM-CLAP)."""
    from ..core.manifest import read_manifest

    ws = Workspace(out, verbose)
    runs = runs or {"reconstruction": "pretrain_supmam_s1", "similarity": "pretrain_supmam_clap_s1",
                    "curves": ["pretrain_supmam_s1", "finetune_supmam_s1", "finetune_scratch_s1"]}
    problems = []
    try:
        clip = read_manifest(os.path.join(data, "test.tsv")).audio_path(0)  # the test split's first clip
    except Exception as e:  # noqa: BLE001 - reported, the demo's results are already written
        problems.append(f"no clip for the reconstruction pictures: {e}")
        clip = None
    jobs = result_pictures(out)
    for key, png in (("reconstruction", "reconstruction.png"), ("similarity", "clap_similarity.png")):
        if clip and runs.get(key):
            jobs.append((f"plot_{runs[key]}", "supmam-plot-reconstruction",
                         [os.path.join(out, runs[key], "checkpoint_last.pt"), clip, "--out", os.path.join(out, png)]))
    jobs.append(("plot_curves", "supmam-plot-curves",
                 [*[ws.log(n) for n in runs["curves"]], "--out", os.path.join(out, "training_curves.png")]))
    for log_name, script, arguments in jobs:
        try:
            run_logged([console_script(script), *arguments], ws.log(log_name), "plot", verbose)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            problems.append(str(e).splitlines()[0])
    return problems


def result_pictures(out: str) -> list[tuple]:
    """The pictures of OUT/results.json (when written): held-out scores, per-class AP (mAP with an
    extra split scored), as (log name, console script, arguments)."""
    if not os.path.isfile(os.path.join(out, "results.json")):
        return []
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        written = json.load(f)
    metric = written.get("metric", "accuracy")
    jobs = [("plot_results", "supmam-plot-results",
             [os.path.join(out, "results.json"), "--out", os.path.join(out, f"held_out_{metric}.png")])]
    if metric == "mAP" and written.get("also_score"):  # per-class AP: held-out test beside the first extra split
        jobs.append(("plot_per_class_ap", "supmam-plot-per-class-ap",
                     [os.path.join(out, "results.json"), "--seen", written["also_score"][0],
                      "--out", os.path.join(out, "per_class_ap.png")]))
    return jobs
