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
