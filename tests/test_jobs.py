"""scripts.lib.planning.jobs: a stage's settings go out as JSON and come back as the same typed object."""
from dataclasses import dataclass

import pytest

from scripts.lib.planning.jobs import Engine, Job, JobError


@dataclass(frozen=True)
class Sample(Job):
    engine: Engine
    name: str
    steps: int
    rate: float
    extra: dict
    weights: str | None


def sample(**over) -> Sample:
    return Sample(**{"engine": Engine((0.5, 0.5, 0.5), (0.2, 0.2, 0.2), 64, "channels_last"), "name": "a",
                     "steps": 2, "rate": 0.5, "extra": {"k": [1]}, "weights": None, **over})


def test_a_job_survives_its_json():
    job = sample()
    assert Sample.from_json(job.to_json()) == job
    assert Sample.from_json(sample(weights="w.pt").to_json()).weights == "w.pt"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("steps"), "missing steps"),
    (lambda d: d.update(colour=1), "unknown colour"),
    (lambda d: d.update(steps="2"), r"Sample.steps: expected int, got '2'"),
    (lambda d: d.update(steps=True), "Sample.steps: expected int"),
    (lambda d: d["engine"].pop("memory_format"), "Sample.engine: missing memory_format"),
    (lambda d: d["engine"].update(mean=0.5), "Sample.engine.mean: expected a list"),
])
def test_a_wrong_job_names_the_key(edit, message):
    import json

    data = json.loads(sample().to_json())
    edit(data)
    with pytest.raises(JobError, match=message):
        Sample.from_dict(data)


def test_an_int_is_a_float_and_stays_equal():
    import json

    data = json.loads(sample().to_json())
    data["rate"] = 1
    assert Sample.from_dict(data).rate == 1.0 and isinstance(Sample.from_dict(data).rate, float)


def render_spec(run, paper):
    from scripts.lib import REPO
    from scripts.lib.planning.render_spec import RenderNumbers, RenderSources, RenderSpec

    return RenderSpec(
        numbers=RenderNumbers(results=f"{run}/results.json", histories=(f"{run}/histories/baseline.json",), correct=(),
                              data_summary=f"{run}/data/dataset.json", provenance=f"{run}/provenance.json",
                              latency=f"{run}/latency.json", benchmarks=(f"{run}/benchmarks/time_models.tsv",)),
        figures={"pareto": (f"{paper}/figures/pareto.png",)},
        sources=RenderSources(template=f"{REPO}/paper/templates/paper.md.j2",
                              latex_template=f"{REPO}/paper/templates/paper.latex",
                              bibliography=f"{REPO}/paper/references.bib",
                              seed_reference=f"{REPO}/paper/seed_reference.yaml"),
        settings={"preset": "test", "seed": 0})


def test_a_render_spec_file_names_its_files_relative_to_itself(tmp_path):
    """Numbers and figures relative to the spec's folder, sources to the repository: the folder
    (and the paper beside it) can move, and the spec still names the same files."""
    import json
    import os
    import shutil

    from scripts.lib.planning.render_spec import RenderSpec

    spec = render_spec(tmp_path / "run", tmp_path / "paper")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "render.json").write_text(spec.text(tmp_path / "run"))
    written = json.loads((tmp_path / "run" / "render.json").read_text())
    assert written["numbers"]["results"] == "results.json" and written["settings"] == spec.settings
    assert written["figures"] == {"pareto": ["../paper/figures/pareto.png"]}
    assert written["sources"]["template"] == "paper/templates/paper.md.j2"
    shutil.move(tmp_path / "run", tmp_path / "moved" / "run")
    moved = RenderSpec.read(tmp_path / "moved" / "run" / "render.json")
    assert moved.rebased(os.path.normpath, os.path.normpath) == render_spec(tmp_path / "moved" / "run",
                                                                            tmp_path / "moved" / "paper")


def test_a_render_spec_checks_its_figure_lists():
    import json

    from scripts.lib.planning.render_spec import RenderSpec

    data = json.loads(render_spec("r", "p").to_json())
    assert RenderSpec.from_dict(data).figures == {"pareto": ("p/figures/pareto.png",)}  # tuples, as built
    data["figures"]["pareto"] = "p/figures/pareto.png"
    with pytest.raises(JobError, match=r"RenderSpec.figures\['pareto'\]: expected a list"):
        RenderSpec.from_dict(data)
