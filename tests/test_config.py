"""Dataclass configs from YAML: nesting, overrides, validation with the key's path."""
from dataclasses import dataclass, field
from typing import List, Optional

import pytest

from go1o4.config import ConfigError, load_config, save_config


@dataclass
class Inner:
    lr: float = 1e-3
    layers: List[int] = field(default_factory=lambda: [64, 64])

    def validate(self):
        if self.lr <= 0:
            raise ValueError("lr must be positive")


@dataclass
class Outer:
    name: str = "x"
    steps: int = 10
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    note: Optional[str] = None


def test_defaults_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 20\ninner:\n  layers: [8]\n")
    c = load_config(Outer, str(p), overrides=["inner.lr=0.5", "flag=true"])
    assert c.steps == 20 and c.inner.layers == [8] and c.inner.lr == 0.5 and c.flag is True and c.name == "x"
    save_config(c, str(tmp_path / "out.yaml"))
    assert load_config(Outer, str(tmp_path / "out.yaml")) == c


@pytest.mark.parametrize("text,message", [
    ("stepz: 3\n", "unknown key(s) ['stepz']"),
    ("steps: ten\n", "steps: expected an integer"),
    ("inner:\n  lr: -1\n", "inner: lr must be positive"),
    ("inner:\n  layers: 3\n", "inner.layers: expected a list"),
    ("flag: 1\n", "flag: expected true/false"),
    ("- a\n", "must hold a mapping"),
])
def test_errors_name_the_key(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(Outer, str(p))
    assert message in str(e.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, "/nonexistent/c.yaml")
