"""-o: whole or not at all, through symbolic links, keeping modes, writing into devices."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from attncli.errors import InputError
from attncli.io.writer import check_target, write_output


def test_regular_file_keeps_its_mode_and_is_replaced_whole(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o640)
    write_output("new\n", path)
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left


def test_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_output("x", tmp_path / "new.txt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


def test_symbolic_link_is_followed(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_output("new", link)
    assert link.is_symlink() and target.read_text() == "new"


def test_fifo_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen([sys.executable, "-c", f"print(open({str(fifo)!r}).read())"],
                              stdout=subprocess.PIPE, text=True)
    write_output("through the pipe", fifo)
    assert reader.communicate(timeout=10)[0].strip() == "through the pipe"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        write_output("x", tmp_path)


# ---------------------------------------------------------------------------------------------
# One check of the target, made before the run (check_target) and again when writing

def test_a_directory_is_refused_before_and_when_writing(tmp_path):
    message = f"{tmp_path}: is a directory; -o needs a file name"
    with pytest.raises(InputError) as early:
        check_target(tmp_path)
    with pytest.raises(InputError) as late:
        write_output("x", tmp_path)
    assert str(early.value) == str(late.value) == message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")
def test_a_read_only_file_is_refused_before_and_when_writing(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o444)
    message = f"{path}: permission denied (the file is read-only)"
    with pytest.raises(InputError) as early:
        check_target(path)
    with pytest.raises(InputError) as late:
        write_output("new", path)
    assert str(early.value) == str(late.value) == message
    assert path.read_text() == "old"


def test_a_missing_folder_is_named_before_the_run(tmp_path):
    path = tmp_path / "nowhere" / "out.json"
    with pytest.raises(InputError) as caught:
        check_target(path)
    assert str(caught.value) == (f"{path}: cannot write: the folder {tmp_path / 'nowhere'} "
                                 "does not exist")
    with pytest.raises(InputError) as caught:  # when writing: the operating system's words
        write_output("x", path)
    assert str(caught.value) == f"{path}: cannot write: No such file or directory"
