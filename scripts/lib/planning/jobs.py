"""Each stage's settings: one typed object, built from the config by the workflow, read by its program.

A rule passes its job's settings as one JSON param (`--job '{...}'`): Snakemake reruns a
job whose params changed, provenance can record them, and the program reads them back
into the same class, which names any key missing or unknown. Paths stay Snakemake's
(inputs and outputs on the command line), and so do threads (a resource).

Torch-free: the workflow builds these while it plans.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass


class JobError(ValueError):
    """A job's settings do not match its class."""


_PRIMITIVES = (int, float, str, bool)


def _check(value, hint, where: str):
    """Convert `value` (parsed JSON) to `hint`: nested jobs are built, primitives checked."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return hint.from_dict(value, where)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _check(value, inner[0], where) if len(inner) == 1 else value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise JobError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else typing.Any
        return origin(_check(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise JobError(f"{where}: expected an object, got {value!r}")
        return value
    if hint in _PRIMITIVES:
        ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise JobError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Job:
    """Base of every stage's settings: JSON out (the workflow), JSON in (the program)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None):
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise JobError(f"{where}: expected an object, got {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - data.keys()), sorted(data.keys() - names)
        if missing or unknown:
            raise JobError(f"{where}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
        hints = typing.get_type_hints(cls)
        return cls(**{n: _check(data[n], hints[n], f"{where}.{n}") for n in names})

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise JobError(f"{cls.__name__}: not JSON ({e}): {text[:200]!r}") from None
        return cls.from_dict(data)

    @classmethod
    def argument(cls):
        """An argparse `type=` that reads the job and turns a bad one into a usage error."""
        def parse(text: str):
            try:
                return cls.from_json(text)
            except JobError as e:
                import argparse

                raise argparse.ArgumentTypeError(str(e)) from None
        parse.__name__ = cls.__name__
        return parse


@dataclass(frozen=True)
class Engine(Job):
    """How every job that runs the network feeds it (config keys data.mean/std, evaluate.batch_size,
    engine.memory_format)."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_batch_size: int
    memory_format: str


def engine(config: dict) -> Engine:
    return Engine(mean=tuple(config["data"]["mean"]), std=tuple(config["data"]["std"]),
                  eval_batch_size=config["evaluate"]["batch_size"], memory_format=config["engine"]["memory_format"])
