"""Safe files: an atomic write leaves the old file or the new one, never a part of either."""

from pathlib import Path

import pytest

from minivlm.files import atomic_write, atomic_write_text, remove_stale_temporaries


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    (tmp_path / ".step_0000010.safetensors.tmp4242").write_bytes(b"partial")
    (tmp_path / "step_0000005.json").write_text("{}")
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["step_0000005.json"]
    assert remove_stale_temporaries(tmp_path / "missing") == 0
