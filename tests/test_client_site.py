"""The caller's file in a client record: relative to the working directory, even after a chdir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_grpc_deadlines.calls._sites import relative as _relative


def test_a_file_inside_the_working_directory_is_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _relative(str(tmp_path / "tests" / "test_x.py")) == os.path.join("tests", "test_x.py")


def test_a_file_outside_the_working_directory_stays_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inside").mkdir()
    monkeypatch.chdir(tmp_path / "inside")
    assert _relative(str(tmp_path / "test_x.py")) == str(tmp_path / "test_x.py")


def test_the_memoised_path_follows_a_change_of_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "a" / "test_x.py")
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _relative(path) == os.path.join("a", "test_x.py")
    monkeypatch.chdir(tmp_path / "a")
    assert _relative(path) == "test_x.py"
    monkeypatch.chdir(tmp_path)
    assert _relative(path) == os.path.join("a", "test_x.py")


def test_a_removed_working_directory_leaves_the_path_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert _relative(str(tmp_path / "test_x.py")) == str(tmp_path / "test_x.py")
