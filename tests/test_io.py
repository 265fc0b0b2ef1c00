"""tsrobust.io: what an atomic write leaves behind when its block raises and when its process is
killed, and the clean-up of a killed write's temporary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tsrobust import io

KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    from tsrobust.io import atomic_write

    with atomic_write(sys.argv[1]) as tmp:
        tmp.write_text("half of the new")
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_block_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.pt"
    path.write_text("old")
    with pytest.raises(KeyError):
        with io.atomic_write(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(io.TEMP_PREFIX + "state.pt.")
            assert tmp.suffix == ".pt"
            tmp.write_text("half")
            raise KeyError
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"] and path.read_text() == "old"
    with io.atomic_write(path) as tmp:
        tmp.write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"] and path.read_text() == "new"


def test_a_killed_write_leaves_its_temporary_until_it_is_removed(tmp_path):
    """As the docstring says: the target keeps its old content, the half-written temporary stays
    (a SIGKILL runs no clean-up), and :func:`io.remove_temporaries` deletes it and only it."""
    path = tmp_path / "last.pt"
    path.write_text("old")
    (tmp_path / "epoch_0002.pt").write_text("weights")
    (tmp_path / ".keep").write_text("")  # a hidden file that no atomic write made
    root = str(Path(io.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert path.read_text() == "old"
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    assert left.read_text() == "half of the new"
    assert io.remove_temporaries(tmp_path) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep", "epoch_0002.pt", "last.pt"]
    assert io.remove_temporaries(tmp_path / "absent") == []
