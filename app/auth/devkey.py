"""The dev admin key of ``guardserve serve`` (``make serve``): generated once into a local file, reused after.

The file (default ``.guardserve/dev-admin-key``, git-ignored) is created with mode 0600 in a 0700 directory, so
``export OPENAI_API_KEY=…`` keeps working across restarts. Every worker reads it as the bootstrap admin key
(``GUARDSERVE_AUTH__ADMIN_KEY_FILE``), so it needs no record in the key store and works with or without Redis.
Dev mode only: production takes its admin key from a secret (``guardserve.app.access.production_problems``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from guardserve.app.auth import keys

FILE_MODE = 0o600
DIR_MODE = 0o700


def load_or_create(path: Path) -> tuple[str, bool]:
    """(the key kept in ``path``, whether it was created now). A missing or malformed file gets a fresh key; a
    file readable by others is narrowed to 0600. A symlink is refused (its target could be anything); this and any
    other file-system failure is an ``OSError`` for the caller to report."""
    if path.is_symlink():
        raise IsADirectoryError(f"{path} is a symlink") if path.is_dir() else PermissionError(f"{path} is a symlink")
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if keys.key_id_of(existing):
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            path.chmod(FILE_MODE)
        return existing, False
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    key = keys.generate()[1]
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    os.chmod(tmp, FILE_MODE)  # whatever the umask
    os.replace(tmp, path)
    return key, True
