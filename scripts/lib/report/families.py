"""Which family of strategies a result row belongs to: masking, channel removal, or neither (the
baseline, the small dense nets). The findings and the tables select rows by it.
"""
from __future__ import annotations

from scripts.lib.planning.registry import CHANNELS, MASKING, STRATEGIES


def family(row: dict) -> str | None:
    return STRATEGIES[row["strategy"]].family if row["strategy"] in STRATEGIES else None


def masked_rows(rows) -> list[dict]:
    """The models pruned by masking (dense tensors with zeros)."""
    return [r for r in rows if family(r) == MASKING]


def channel_rows(rows) -> list[dict]:
    """The models whose channels were physically removed."""
    return [r for r in rows if family(r) == CHANNELS]
