"""The deployment checkers (helm, docker-compose, kubernetes-validate, checkov, hadolint) that `scripts/deploy-tools`
installs into ``.tools/bin`` (CI runs it before the suite). Found there first, then on PATH; missing, a test skips
saying how to get it, or fails in CI (:func:`tests.support.requirements.require`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.requirements import require
from tests.support.waits import SUBPROCESS_S

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"


def tool(name: str) -> str:
    local = TOOLS / name
    found = str(local) if local.exists() else shutil.which(name)
    require(found is not None, name, "make deploy-tools")
    assert found is not None
    return found


# checkov offline: no release check against PyPI, no guideline download from its vendor (also skip-download in
# .checkov.yaml). Tests reach nothing beyond loopback.
OFFLINE = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}


def run(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **OFFLINE}
    return subprocess.run(
        list(args), cwd=cwd, input=stdin, env=env, capture_output=True, text=True, timeout=SUBPROCESS_S
    )
