"""The workflow as Snakemake plans it: lint, config errors before any job, dry runs."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, snakemake
from scripts.lib.planning.jobs import EvaluateJob, PruneJob
from scripts.lib.planning.config import baseline_replicas_by_name, experiment_names, replicas_by_name
from scripts.lib.planning.registry import FIGURES


def test_lint_is_clean(tmp_path):
    run = snakemake(tmp_path, "--lint")
    assert run.returncode == 0 and "Lints for" not in run.stdout + run.stderr, run.stdout + run.stderr


@pytest.mark.parametrize("override, message", [
    ({"experiments": {}}, "config key experiments: an empty mapping ({}) in"),
    ({"experiments": [{"name": "oneshot_l1_50", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5},
                      {"name": "ONESHOT_L1_50", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5}]},
     "config key experiments[1].name: 'ONESHOT_L1_50' and experiments[0].name 'oneshot_l1_50' differ only in letter case"),
])
def test_configfile_errors_stop_the_plan(tmp_path, override, message):
    configfile = tmp_path / "my.yaml"
    configfile.write_text(yaml.safe_dump({**override, "results_dir": str(tmp_path / "results")}))
    run = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run")
    assert run.returncode != 0
    assert message in run.stdout + run.stderr


def test_planning_imports_no_torch():
    """Every `snakemake -n`, and every cluster job, runs common.smk: the project modules
    it imports must not pull in torch (over a second each time)."""
    modules = re.findall(r"^from (scripts[\w.]*) import", (ROOT / "workflow/rules/common.smk").read_text(), re.MULTILINE)
    assert "scripts.lib.planning.config" in modules
    code = f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('torch', 'torchvision', 'torch_pruning', 'matplotlib', 'onnx', 'onnxruntime')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr


def job_blocks(output: str, rule: str) -> list[str]:
    return [b for b in output.split("\nrule ")[1:] if b.startswith(f"{rule}:")]


def test_the_timing_job_takes_the_machine_and_jobs_share_it_unless_exclusive(tmp_path):
    """The one timing job runs alone: every core Snakemake was given and the GPU slot. Prune
    and evaluate jobs take one core each and run side by side (jobs.exclusive: false, the
    shipped setting), or every core one at a time (jobs.exclusive: true)."""
    paper = snakemake(tmp_path, "--dry-run", "--config", f"results_dir={tmp_path}/p", f"paper_dir={tmp_path}/p",
                      cores=3)
    (tmp_path / "exclusive.yaml").write_text("jobs: {exclusive: true}\n")
    exclusive = snakemake(tmp_path, "--dry-run", "--configfile", str(ROOT / "config.yaml"), str(tmp_path / "exclusive.yaml"),
                          "--config", f"results_dir={tmp_path}/e", f"paper_dir={tmp_path}/e", cores=3)
    assert paper.returncode == 0 and exclusive.returncode == 0, paper.stderr[-2000:] + exclusive.stderr[-2000:]
    (timing,) = job_blocks(paper.stdout, "time_models")
    assert "threads: 3" in timing and "gpu=1" in timing, timing
    blocks = job_blocks(paper.stdout, "evaluate_model")
    assert blocks and all("threads:" not in b and "gpu=0" in b for b in blocks), blocks  # 1 thread: not shown
    assert all("threads: 3" in b and "gpu=1" in b for b in job_blocks(exclusive.stdout, "evaluate_model"))
    with open(ROOT / "config.yaml") as f:
        shipped = yaml.safe_load(f)
    experiments = experiment_names(shipped) + list(replicas_by_name(shipped))  # named, sweep and seed rows
    small = [e["name"] for e in shipped.get("small_dense", [])]  # trained from scratch, evaluated like the rest
    second_baselines = list(baseline_replicas_by_name(shipped))  # baseline_seeds: trained and evaluated
    assert second_baselines and len(blocks) == len(experiments) + len(small) + len(second_baselines) + 1
    # training jobs print their message (where to follow them) instead of the rule's block
    for run, threads in ((paper, 1), (exclusive, 3)):
        pruning = [line for line in run.stdout.splitlines() if ": Pruning " in line or " without pruning (a dense control)" in line]
        assert len(pruning) == len(experiments) and all(f" on {threads} thread(s); follow it with: tail -f " in line
                                                        for line in pruning)
        lines = run.stdout.splitlines()
        baselines = [i for i, line in enumerate(lines) if ": Training baseline_seed" in line]
        assert len(baselines) == len(second_baselines) and all(f" on {threads} thread(s)" in lines[i] for i in baselines)
        # each waits for the seed-0 baseline (an input), so it never takes a core that baseline needs
        assert all(lines[i + 1].startswith("Reason:") and "/models/baseline.pt" in lines[i + 1] for i in baselines)


# --- code is an input: editing a module reruns exactly the jobs that run it ---------------

SMALL = {
    "preset": "code-test", "results_dir": "results", "paper_dir": "results/paper",
    "data": {"source": "synthetic", "path": None}, "model": {"weights": "none"},
    "experiments": [
        {"name": "it_l1_50", "strategy": "l1_unstructured", "schedule": "iterative", "sparsity": 0.5, "steps": 2},
        {"name": "os_ch_50", "strategy": "l2_channels", "schedule": "oneshot", "sparsity": 0.5},
    ],
    "sweeps": [], "ablation": [], "seeds_experiments": [], "baseline_seeds": [0], "small_dense": [],
}
PLOTS = {f"plot_{name}": 1 for name in FIGURES}  # one rule per registry figure
PDF = {"compile_pdf": 1} if shutil.which("latexmk") else {}
RENDERING = {"render_paper": 1, **PDF, "crosscheck_paper": 1, "publish_numbers": 1}
# Jobs per rule that `snakemake -n` must plan after an edit of one file (the config above:
# one masking and one channel experiment, so three models). Provenance records the code
# hash of every stage the paper shows, hence reruns with any of them.
EDITS = {
    "scripts/lib/report/figures.py": {**PLOTS, "record_provenance": 1, **RENDERING},
    "scripts/lib/models/engine.py": {"finetune_baseline": 1, "prune_model": 1, "prune_channels": 1, "evaluate_model": 3,
                          "time_models": 1, "aggregate_results": 1, **PLOTS, "record_provenance": 1, **RENDERING},
    "scripts/lib/report/crosscheck.py": {"crosscheck_paper": 1, "publish_numbers": 1},  # its report is published
    "paper/templates/paper.md.j2": RENDERING,
    "scripts/lib/report/findings.py": {"record_provenance": 1, **RENDERING},  # the paper's code: not its spec
    "scripts/benchmarks/plan_speed.py": {},  # no job runs it
}


def copy_checkout(dest: Path) -> None:
    """The files of this checkout (tracked, and new ones git does not ignore), as a clone has them."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():  # a deleted, not yet committed file is still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, dest / name)


def planned(clone: Path, work: Path) -> dict[str, int]:
    """Jobs per rule of `snakemake -n` in `work` with the clone's workflow ({} if none)."""
    run = snakemake(work, "--configfile", str(work / "config.yaml"), "--dry-run", "--quiet", "rules",
                    snakefile=clone / "Snakefile")
    assert run.returncode == 0, run.stderr[-3000:]
    if "Nothing to be done" in run.stdout + run.stderr:
        return {}
    table = (run.stdout + run.stderr).split("Job stats:", 1)[1].split("total", 1)[0]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE))
    return {rule: int(n) for rule, n in jobs.items() if rule not in ("job", "all")}


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    """A copy of this checkout, and a working folder in which every output of SMALL exists
    and is up to date for that copy, without running a job: empty files, then
    `snakemake --touch` records each job's params (its code hash among them) as if it had run."""
    base = tmp_path_factory.mktemp("code")
    clone, work = base / "clone", base / "work"
    copy_checkout(clone)
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(SMALL))
    args = ("--configfile", str(work / "config.yaml"))
    summary = snakemake(work, *args, "--summary", snakefile=clone / "Snakefile")
    assert summary.returncode == 0, summary.stderr[-3000:]
    for line in summary.stdout.splitlines()[1:]:
        path = work / line.split("\t")[0]
        if path == work / "results/paper/numbers":  # a directory output
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    # --forceall: a job whose empty files happen to be newer than its inputs is touched too
    touch = snakemake(work, *args, "--touch", "--forceall", snakefile=clone / "Snakefile")
    assert touch.returncode == 0, touch.stderr[-3000:]
    assert planned(clone, work) == {}
    return clone, work


def test_a_fresh_clone_reruns_no_computation(settled, tmp_path):
    """Every file of a new clone is newer than the results and has another path; the code
    hashes are equal, so nothing is trained, pruned, measured or plotted again. Only the
    rendering reruns: its templates are inputs by path, and the path changed."""
    _, work = settled
    copy_checkout(tmp_path / "other")
    assert planned(tmp_path / "other", work) == RENDERING


# The fast set plans three of the edits (a module every stage runs, a template, a file no job
# runs); the others are marked slow (each plan takes seconds), and the full set runs them all.
FAST_EDITS = ("scripts/lib/models/engine.py", "paper/templates/paper.md.j2", "scripts/benchmarks/plan_speed.py")


@pytest.mark.parametrize("path", [p if p in FAST_EDITS else pytest.param(p, marks=pytest.mark.slow) for p in EDITS])
def test_editing_a_file_reruns_exactly_the_jobs_that_use_it(settled, path):
    clone, work = settled
    edited = clone / path
    original, stat = edited.read_bytes(), edited.stat()
    try:
        edited.write_bytes(original + (b"\n{# edited #}\n" if path.endswith(".j2") else b"\n# edited\n"))
        assert planned(clone, work) == EDITS[path]
    finally:
        edited.write_bytes(original)
        os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned(clone, work) == {}  # the same code again: nothing to do


def test_every_rule_running_project_code_has_its_code_hash():
    """A rule that runs `python -m scripts.X` carries code=code_hash("scripts.X"), so the
    module a rule runs and the code that decides its reruns cannot drift apart. The
    downloads are exempt: their files are checked against published hashes (the JPEG mirror
    by its decoded content)."""
    exempt = {"download_cifar10", "download_jpeg_mirror", "fetch_imagenet_weights"}
    seen = set()
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule |use rule )", smk.read_text(), flags=re.MULTILINE)[1:]:
            name = re.match(r"(?:use rule \w+ as |rule )(\w+)", block).group(1)
            runs = set(re.findall(r"python -m (scripts\.[\w.]+)", block))
            hashed = set(re.findall(r'code=code_hash\("(scripts\.[\w.]+)"\)', block))
            seen.add(name)
            if name in exempt or block.startswith("use rule"):  # a use rule inherits params
                continue
            assert runs == hashed, f"{smk.name}: rule {name} runs {runs}, its code param hashes {hashed}"
    assert exempt <= seen


def test_each_prune_job_gets_its_experiments_prunable_set(tmp_path):
    """scope and exclude of one experiment reach its prune job only; evaluation keeps the
    paper's prunable set, so every model's sparsity is counted over the same weights."""
    rows = [{"name": "plain", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5},
            {"name": "own", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5,
             "scope": "global", "exclude": ["features.0.0", "classifier.1"]}]
    configfile = tmp_path / "my.yaml"
    configfile.write_text(yaml.safe_dump({"experiments": rows, "sweeps": [], "ablation": [], "seeds_experiments": [], "baseline_seeds": [0], "small_dense": [], "results_dir": str(tmp_path / "r"),
                                          "paper_dir": str(tmp_path / "r")}))
    run = snakemake(tmp_path, "--configfile", str(ROOT / "workflow/presets/quick.yaml"), str(configfile),
                    "--dry-run", "--printshellcmds")
    assert run.returncode == 0, run.stderr[-2000:]
    commands = [line for line in run.stdout.splitlines() if line.startswith("Shell command: python -m scripts.")]
    prune_jobs = {job.name: job for job in (PruneJob.from_json(job_arg(c)) for c in commands if "scripts.prune " in c)}
    assert set(prune_jobs) == {"plain", "own"}
    assert prune_jobs["plain"].prunable == {"layer_types": ["Conv2d", "Linear"], "exclude": [], "scope": "layer",
                                            "round_to": 8}
    assert prune_jobs["own"].prunable["exclude"] == ["features.0.0", "classifier.1"]
    assert prune_jobs["own"].prunable["scope"] == "global"
    assert "scope" not in prune_jobs["own"].experiment and "exclude" not in prune_jobs["own"].experiment
    evaluations = [EvaluateJob.from_json(job_arg(c)) for c in commands if "scripts.evaluate " in c]
    assert len(evaluations) == 3 and all(e.prunable["exclude"] == [] and e.prunable["scope"] == "layer"
                                         for e in evaluations)


def job_arg(command: str) -> str:
    """The --job JSON of a planned shell command."""
    words = shlex.split(command.removeprefix("Shell command: "))
    return words[words.index("--job") + 1]


def test_the_slurm_profile_sizes_every_rule_that_asks_for_a_gpu():
    """A rule missing from the profile's set-resources keeps the `gpu` written in the rule:
    on a CPU-only partition its sbatch fails (the timing job did, before it was listed)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    blocks = re.split(r"^(?=rule |use rule )", text, flags=re.MULTILINE)
    gpu_rules = set()
    for block in blocks:
        name = re.match(r"(?:rule|use rule \w+ as) (\w+)", block)
        if name and ("gpu=" in block or block.startswith("use rule")):  # a `use rule` inherits the gpu
            gpu_rules.add(name.group(1))
    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert {"finetune_baseline", "prune_model", "prune_channels", "evaluate_model", "time_models"} <= gpu_rules
    assert gpu_rules <= set(profile["set-resources"]) and gpu_rules <= set(profile["set-threads"])


CONTROLS = {
    "experiments": [
        {"name": "it_l1_50", "strategy": "l1_unstructured", "schedule": "iterative", "sparsity": 0.5, "steps": 2},
        {"name": "os_ch_50", "strategy": "l2_channels", "schedule": "oneshot", "sparsity": 0.5},
        {"name": "dense_it", "strategy": "dense", "schedule": "iterative", "sparsity": 0, "steps": 2,
         "control_of": "it_l1_50"},
        {"name": "dense_kd", "strategy": "dense", "schedule": "oneshot", "sparsity": 0, "control_of": "it_l1_50",
         "finetune": {"epochs": 4, "lr": 0.05}, "distill": {"weight": 0.5, "temperature": 4}}],
    "small_dense": [{"name": "small_ch_50", "matches": "os_ch_50"}],
    "sweeps": [], "ablation": [], "seeds_experiments": [], "baseline_seeds": [0],
}


def test_the_controls_are_planned_when_asked_for_and_only_then(tmp_path):
    """Dense rows are prune jobs without masks (finetune_dense); a small dense net is a width
    match on its matched experiment's checkpoint, then a training job of the baseline's program;
    all of them are evaluated, timed and tabled like the others. The quick preset plans none."""
    def plan(*configfiles):
        out = tmp_path / str(len(configfiles))
        run = snakemake(tmp_path, "--configfile", str(ROOT / "workflow/presets/quick.yaml"), *map(str, configfiles),
                        "--config", f"results_dir={out}", f"paper_dir={out}/paper", "--dry-run", "--printshellcmds")
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout, out

    quick, _ = plan()
    assert "match_width" not in re.findall(r"^rule (\w+):", quick, re.MULTILINE)
    assert "without pruning" not in quick and "small dense" not in quick and "scripts.width" not in quick
    configfile = tmp_path / "controls.yaml"
    configfile.write_text(yaml.safe_dump(CONTROLS))
    stdout, out = plan(configfile)
    # training jobs print their message in place of the rule's block
    assert len(re.findall(r": Fine-tuning dense_(it|kd) without pruning \(a dense control\)", stdout)) == 2
    assert len(re.findall(r": Training the small dense net small_ch_50 from scratch", stdout)) == 1
    assert len(re.findall(r": Pruning ", stdout)) == 2  # it_l1_50 and os_ch_50
    rules = re.findall(r"^rule (\w+):", stdout, re.MULTILINE)
    assert (rules.count("match_width"), rules.count("evaluate_model")) == (1, 6)
    commands = [line.removeprefix("Shell command: ") for line in stdout.splitlines()
                if line.startswith("Shell command: python -m scripts.")]
    dense = [PruneJob.from_json(job_arg(c)) for c in commands if "scripts.prune " in c and "dense" in c]
    assert sorted(j.name for j in dense) == ["dense_it", "dense_kd"]
    assert all("--masked-ckpt" not in c for c in commands if "scripts.prune " in c and "dense" in c)
    (width,) = [c for c in commands if "scripts.width " in c]
    assert f"--matched {out}/models/os_ch_50.pt" in width and f"--out {out}/controls/small_ch_50.width.json" in width
    (small,) = [c for c in commands if "scripts.finetune " in c and "--width" in c]
    quick_config = yaml.safe_load((ROOT / "workflow/presets/quick.yaml").read_text())
    hyp = json.loads(job_arg(small))["hyp"]  # the baseline's epochs and os_ch_50's one fine-tune
    assert hyp["epochs"] == quick_config["train"]["epochs"] + quick_config["prune"]["finetune"]["epochs"]
    assert f"--ckpt {out}/models/small_ch_50.pt" in small
    (timing,) = [c for c in commands if "scripts.timing " in c]
    assert all(f"--model {m} " in timing for m in ("dense_it", "dense_kd", "small_ch_50"))
