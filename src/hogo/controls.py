"""The control catalog (``hogo/data/controls.toml``): requirement ID → how hogo meets it, where, proven by."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources


@dataclasses.dataclass(frozen=True)
class Control:
    id: str
    how: str
    code: tuple[str, ...]
    tests: tuple[str, ...]


def load_controls() -> list[Control]:
    raw = tomllib.loads(resources.files("hogo").joinpath("data/controls.toml").read_text(encoding="utf-8"))
    return [
        Control(id=c["id"], how=c["how"], code=tuple(c.get("code", ())), tests=tuple(c.get("tests", ())))
        for c in raw["control"]
    ]
