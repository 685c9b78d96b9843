"""Import transformers the way GuardServe needs it: offline (never a hub download) and without progress bars.

:data:`LOAD_LOCK`: one model load at a time in a process. transformers' ``from_pretrained`` swaps process-wide
functions while it builds a model (``torch.nn.init``'s initialisers for no-ops, ``torch.linspace``, the meta
device) and puts back what it saved when it is done; two loads in two threads at once (two CPU engines starting
together, a registry reload while another starts) can each save the other's stand-ins and leave them in place for
good: every model built afterwards in the process had uninitialised or meta-device weights (found by the suite:
after a gateway started two CPU versions together, later tests generated garbage).
"""

from __future__ import annotations

import os
import threading
from types import ModuleType

LOAD_LOCK = threading.Lock()


def transformers_offline() -> ModuleType:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import transformers

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    return transformers
