"""The files export writes and import reads: export's temporary file never writes through a link, import reads a
pipe as it reads a file."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import pytest

from agno_storage.cli import main
from agno_storage.ops.db import open_database
from agno_storage.ops.export import export_table

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = "agent_sessions"


@pytest.mark.parametrize("leftover", ["a link to another file", "a dangling link", "a file"])
def test_export_never_writes_through_what_is_already_at_its_temporary_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], leftover: str
) -> None:
    out = tmp_path / "x.jsonl"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    partial = Path(f"{out}.partial")
    if leftover == "a link to another file":
        partial.symlink_to(victim)
    elif leftover == "a dangling link":
        partial.symlink_to(tmp_path / "made.txt")
    else:
        partial.write_text("what a stopped export left")
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
    whole = io.BytesIO()
    with open_database(str(FIXTURES / "go_agent.db")) as db:
        export_table(db, TABLE, whole)
    assert out.read_bytes() == whole.getvalue()
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "made.txt").exists()
    assert not partial.exists() and not partial.is_symlink()


def test_import_reads_a_named_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "x.jsonl"
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(lines)]) == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(lines.read_bytes())

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        code = main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(fifo)])
    finally:
        if feeder.is_alive():  # import refused it unread: let the writer finish
            with fifo.open("rb") as pipe:
                pipe.read()
        feeder.join()
    assert code == 0
    assert "imported" in capsys.readouterr().out


def test_import_still_refuses_a_folder_or_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "go_agent.db", tmp_path / "t.db")
    assert main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(tmp_path / "none.jsonl")]) == 1
    assert "no file" in capsys.readouterr().err
