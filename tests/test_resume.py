"""Kill and resume: a job interrupted after some epochs or pruning steps, started
again, ends exactly where an uninterrupted run ends."""
import pytest
import torch

from scripts.lib.models import engine
from scripts.lib.pruning import experiment
from scripts.lib.models.engine import DeviceData, TrainHyp, fit
from scripts.lib.models.network import build_model
from scripts.lib.pruning.experiment import Experiment, run_experiment
from scripts.lib.models.resume import ResumePoint, resume_key
from scripts.lib.files import load_torch

HYP = TrainHyp(epochs=3, batch_size=32, lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True,
               label_smoothing=0.0, warmup_epochs=1)
PRUNABLE = {"layer_types": ["Conv2d", "Linear"], "exclude": [], "scope": "layer", "round_to": None}


class Killed(Exception):
    """Stands in for kill -9 in the middle of a job."""


def splits():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=g)
    data = DeviceData(images, torch.arange(96) % 10, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    return {"train": data, "val": data}


def fresh_model():
    """What a restarted process builds before it loads anything."""
    torch.manual_seed(0)
    return build_model(10)


def without_seconds(history):
    drop = {"seconds"}
    return [{k: (without_seconds(v) if k == "epochs" else v) for k, v in h.items() if k not in drop}
            for h in history]


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def saved_progress(point: ResumePoint) -> tuple[str, dict]:
    """Where the resume file says the job was, and the progress it keeps."""
    state = load_torch(point.path)
    assert state["key"] == point.key
    return state["where"], state["progress"]


def kill_on_call(monkeypatch, module, name, call):
    """Make module.name raise Killed on its `call`-th call (1-based), as a kill would."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise Killed
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, wrapper)


@pytest.mark.parametrize("hyp", [HYP, TrainHyp(**{**HYP.__dict__, "ema_decay": 0.9, "lr_schedule": "linear",
                                                   "decay_norm_and_bias": False})],
                         ids=["plain", "ema-linear-nodecay"])
def test_fit_resumes_after_the_last_finished_epoch(tmp_path, monkeypatch, hyp):
    HYP = hyp  # noqa: N806 - the test body below reads HYP
    data = splits()
    reference = fresh_model()
    ref_history = fit(reference, data["train"], data["val"], HYP, seed=1, eval_batch_size=48)

    point = ResumePoint(tmp_path / "baseline.pt.resume", resume_key({"hyp": "x"}))
    with monkeypatch.context() as m:
        kill_on_call(m, engine, "train_one_epoch", 3)  # dies during epoch 3
        with pytest.raises(Killed):
            fit(fresh_model(), data["train"], data["val"], HYP, seed=1, eval_batch_size=48, resume=point)
    where, progress = saved_progress(point)  # epochs 1 and 2, as the uninterrupted run had them
    assert where == f"epoch 2/{HYP.epochs}"
    assert without_seconds(progress["history"]) == without_seconds(ref_history[:2])
    resumed = fresh_model()
    history = fit(resumed, data["train"], data["val"], HYP, seed=1, eval_batch_size=48, resume=point)
    assert without_seconds(history) == without_seconds(ref_history)
    assert same_state(resumed.state_dict(), reference.state_dict())


def test_a_resume_file_of_other_settings_is_ignored(tmp_path, caplog):
    data = splits()
    point = ResumePoint(tmp_path / "x.resume", "key-a")
    point.save({"history": []}, "epoch 1/3")
    other = ResumePoint(tmp_path / "x.resume", "key-b")
    assert other.load() is None
    assert "other settings" in caplog.text
    (tmp_path / "x.resume").write_bytes(b"torn")  # a file cut short by the kill
    assert other.load() is None
    hyp = TrainHyp(**{**HYP.__dict__, "epochs": 1})
    history = fit(fresh_model(), data["train"], data["val"], hyp, seed=1, eval_batch_size=48, resume=other)
    assert other.load()["history"] == history  # replaced by this job's own progress
    assert saved_progress(other)[0] == "epoch 1/1"


def killed_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, exp, data, hyp, module, name, saved,
                                             prunable=PRUNABLE):
    """Kill run_experiment on the 3rd call of module.name, resume it, and compare with an
    uninterrupted run: same history (timings aside), same weights. `saved(ref_history)`: where
    the resume file must say the job was when it died, and the history it must hold."""
    reference = fresh_model()
    ref_history = run_experiment(reference, exp, prunable, data, hyp, seed=0, eval_batch_size=48)
    point = ResumePoint(tmp_path / "x.pt.resume", "k")
    with monkeypatch.context() as m:
        kill_on_call(m, module, name, 3)
        with pytest.raises(Killed):
            run_experiment(fresh_model(), exp, prunable, data, hyp, seed=0, eval_batch_size=48, resume=point)
    where, progress = saved_progress(point)
    expected_where, expected_history = saved(ref_history)
    assert where == expected_where
    assert without_seconds(progress["history"]) == without_seconds(expected_history)
    resumed = fresh_model()
    history = run_experiment(resumed, exp, prunable, data, hyp, seed=0, eval_batch_size=48, resume=point)
    assert without_seconds(history) == without_seconds(ref_history)
    assert same_state(resumed.state_dict(), reference.state_dict())


@pytest.mark.parametrize("strategy", ["l1_unstructured", "l2_channels"])
def test_pruning_resumes_after_the_last_finished_step(tmp_path, monkeypatch, strategy):
    data = splits()
    hyp = TrainHyp(**{**HYP.__dict__, "epochs": 1, "warmup_epochs": 0})
    exp = Experiment(strategy, "iterative", 0.6, 3)
    # killed in step 3's fine-tune: the file holds steps 1 and 2
    killed_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, exp, data, hyp, experiment, "fit",
                                             lambda ref: ("step 2/3", ref[:2]))


@pytest.mark.slow  # 5-10 s of pruning on the full-size network; the full set (CI) runs it
def test_global_taylor_pruning_to_a_mac_target_resumes_after_the_last_finished_step(tmp_path, monkeypatch):
    """The searched steps replay from Torch-Pruning's history; the gradient batches are the step's."""
    data = splits()
    hyp = TrainHyp(**{**HYP.__dict__, "epochs": 1, "warmup_epochs": 0})
    exp = Experiment("taylor_channels", "iterative", 0.5, 3, target="macs", gradient_batches=2)
    killed_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, exp, data, hyp, experiment, "fit",
                                             lambda ref: ("step 2/3", ref[:2]),
                                             prunable={**PRUNABLE, "scope": "global", "round_to": 8})


@pytest.mark.slow  # 5-10 s of pruning on the full-size network; the full set (CI) runs it
def test_gradual_pruning_resumes_after_the_last_finished_epoch(tmp_path, monkeypatch):
    data = splits()
    hyp = TrainHyp(**{**HYP.__dict__, "epochs": 4, "warmup_epochs": 0})
    exp = Experiment("l1_unstructured", "gradual", 0.8, 6, recalibrate_bn=1)
    # killed in epoch 3 of the one fine-tune: the file holds epochs 1 and 2
    killed_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, exp, data, hyp, engine, "train_one_epoch",
                                             lambda ref: ("gradual epoch 2/4", ref[0]["epochs"][:2]))
