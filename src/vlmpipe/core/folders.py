"""Why a folder could not be created or written, in words a user can act on (``--out``, ``output_dir``)."""

from __future__ import annotations

from pathlib import Path


def why_not_written(folder: Path, err: OSError) -> str:
    """One phrase for ``err``, raised while creating or writing into ``folder``: a file where the folder (or one
    above it) should be, else the system's reason (no permission, read-only file system, disk full)."""
    if folder.is_file() or any(p.is_file() for p in folder.parents):
        return "a file is in the way"
    return err.strerror or str(err)
