"""Atomic file writes: a reader of a path sees its old content or the complete new one, never a
half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_PREFIX = "."
""":func:`atomic_write` writes ``.<name>.<random><suffix>`` beside the target: hidden, and never
the name a reader opens."""


@contextlib.contextmanager
def atomic_write(path, *, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary, ``.<name>.<random><suffix>``, keeps ``path``'s suffix (``np.savez`` appends
    ``.npz`` otherwise). The rename (``os.replace``) is atomic, so ``path`` holds its old content
    (or stays absent) until the new one is complete.

    If the block raises, the temporary file is removed. If the process is killed inside the block
    (SIGKILL, out of memory), the temporary stays behind, possibly half-written: readers open only
    ``path`` and never see it, and :func:`remove_temporaries` clears a folder of them (the trainer
    does so for its checkpoint folder when a run starts). Nothing is fsynced: this guards against
    a killed process, not against a power loss.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.",
                               suffix=path.suffix if suffix is None else suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; give the usual mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_temporaries(folder) -> list[Path]:
    """Delete the temporaries that killed :func:`atomic_write` blocks left in ``folder`` (hidden
    files, ``.<name>.<random><suffix>``); returns the paths removed.

    Only for a folder that one process writes at a time (a run's checkpoint folder): another
    process's write in progress would lose its temporary.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.iterdir()
                   if p.name.startswith(TEMP_PREFIX) and p.name.count(".") >= 2 and p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
