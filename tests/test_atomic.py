"""ptlab.atomic, the one writer of files a later run reads: complete or not at all, even after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ptlab.atomic import TEMP_SUFFIX, read_json, temp_path, write_atomic, write_json, write_text


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"step": 1})

    def half_then_fail(f) -> None:
        f.write(b'{"step": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert read_json(target) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_kill_9_in_the_middle_of_a_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    """A process killed while its new bytes are half written: the reader still finds the old, complete file."""
    target = tmp_path / "summary.json"
    write_json(target, {"version": "old"})
    writer = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from pathlib import Path
from ptlab.atomic import write_atomic

def slow(f):
    f.write(b'{{"version": "ne')
    f.flush()
    print("half", flush=True)
    time.sleep(60)

write_atomic(Path({str(target)!r}), slow)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "half"  # the kill lands inside the write, not before or after
        temp = temp_path(target).with_name(temp_path(target).name.replace(str(os.getpid()), str(writer.pid)))
        assert temp.read_bytes() == b'{"version": "ne'
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    assert writer.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"version": "old"}
    assert temp.name.startswith(".") and temp.name.endswith(TEMP_SUFFIX)  # hidden, and swept by the next run


def test_a_complete_write_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "notes" / "tokenizer.json"  # the folder is made
    write_text(target, "first")
    before = target.stat().st_ino
    write_text(target, "second")
    assert target.read_text() == "second"
    assert target.stat().st_ino != before  # a new file moved into place, not the old one rewritten in place
    assert [p.name for p in target.parent.iterdir()] == ["tokenizer.json"]


@pytest.mark.parametrize("content", ["", '{"step": 3', "not json", "\x00\x01"])
def test_a_missing_or_torn_json_file_reads_as_absent(tmp_path: Path, content: str) -> None:
    assert read_json(tmp_path / "nothing.json") is None
    torn = tmp_path / "torn.json"
    torn.write_text(content)
    assert read_json(torn) is None


def test_temp_files_are_per_process(tmp_path: Path) -> None:
    """Two processes writing the same file never share a temp file (each replaces the target whole)."""
    target = tmp_path / "manifest.json"
    name = temp_path(target).name
    assert str(os.getpid()) in name and name != target.name
