"""The shared hot-reloaded YAML settings loader both flows build on."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from agents.common.yaml_settings import SettingsError, YamlSettings, config_path

LOG = logging.getLogger("stepline.test.yaml_settings")


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retries: int = Field(3, ge=0)


class Demo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    limits: Limits = Field(default_factory=Limits)


_clock = iter(range(1_700_000_000, 1_800_000_000, 10))


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # A fresh mtime per edit without sleeping: coarse clocks must not hide one.
    stamp = next(_clock)
    os.utime(path, (stamp, stamp))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "demo.yaml"


def test_missing_file_gives_defaults_and_no_problem(path: Path) -> None:
    loader = YamlSettings(Demo, path, LOG)
    assert loader.current() == Demo() and loader.problem is None and not loader.exists


def test_edits_apply_bad_edits_keep_last_good_and_name_the_key(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(path, "name: first\nlimits: {retries: 5}\n")
    loader = YamlSettings(Demo, path, LOG)
    assert loader.current() == Demo(name="first", limits=Limits(retries=5))
    assert loader.exists
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        write(path, "name: second\nlimits: {retries: -1}\n")
        kept = loader.current()
    assert kept.name == "first" and kept.limits.retries == 5
    assert loader.problem and loader.problem.startswith("limits.retries: ")
    assert "greater than or equal to 0" in loader.problem
    assert "limits.retries" in caplog.text and "keeping the last good settings" in caplog.text
    assert str(path) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOG.name):  # bad from the start: no last good
        assert YamlSettings(Demo, path, LOG).current() == Demo()
    assert "using the defaults until it is fixed" in caplog.text
    assert "last good" not in caplog.text
    write(path, "name: second\nlimits: {retries: 0}\n")
    assert loader.current().name == "second" and loader.current().limits.retries == 0
    assert loader.problem is None


def test_same_mtime_edit_of_another_size_is_seen(path: Path) -> None:
    path.write_text("name: a\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    loader = YamlSettings(Demo, path, LOG)
    assert loader.current().name == "a"
    path.write_text("name: abc\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    assert loader.current().name == "abc"


def test_file_removed_means_defaults_again(path: Path) -> None:
    write(path, "name: custom\n")
    loader = YamlSettings(Demo, path, LOG)
    assert loader.current().name == "custom"
    write(path, "nmae: typo\n")
    assert loader.current().name == "custom" and loader.problem
    path.unlink()
    assert loader.current() == Demo() and loader.problem is None and not loader.exists


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("limits:\n  retries: [\n", r"^not valid YAML at line 3, column 1: "),
        ("- a list\n", "must hold a mapping"),
        ("42\n", "must hold a mapping"),
        (
            "limits: {retrys: 1}\n",
            r"^limits\.retrys: unknown key `retrys`, did you mean `retries`\?$",
        ),
        ("limits: 7\n", r"^limits: "),
        # A key given twice: PyYAML would keep the last one silently.
        (
            "name: a\nlimits: {retries: 1}\nname: b\n",
            r"^not valid YAML at line 3, column 1: duplicate key 'name' \(first at line 1\)$",
        ),
        ("limits:\n  retries: 1\n  retries: 2\n", r"duplicate key 'retries' \(first at line 2\)"),
    ],
)
def test_load_strict_names_path_key_and_reason(path: Path, text: str, reason: str) -> None:
    write(path, text)
    loader = YamlSettings(Demo, path, LOG)
    with pytest.raises(SettingsError) as caught:
        loader.load_strict()
    assert str(caught.value) == f"{path}: {caught.value.reason}"
    assert re.search(reason, caught.value.reason), caught.value.reason
    assert loader.current() == Demo() and loader.problem == caught.value.reason


def test_merge_keys_are_not_duplicates(path: Path) -> None:
    # A `<<:` merge overridden by an explicit key is YAML's own idiom, not a repeat.
    write(path, "name: a\nlimits:\n  <<: {retries: 1}\n  retries: 4\n")
    assert YamlSettings(Demo, path, LOG).load_strict().limits.retries == 4


def test_empty_file_or_comments_only_is_the_defaults(path: Path) -> None:
    write(path, "# nothing set yet\n")
    loader = YamlSettings(Demo, path, LOG)
    assert loader.current() == Demo() and loader.problem is None and loader.exists


def test_config_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEPLINE_CONFIG_DIR", raising=False)
    assert config_path("x.yaml") == Path("config") / "x.yaml"
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", "/etc/stepline")
    assert config_path("x.yaml") == Path("/etc/stepline/x.yaml")
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", "")  # empty: as unset
    assert config_path("x.yaml") == Path("config") / "x.yaml"
