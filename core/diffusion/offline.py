"""Force every Hugging Face library into offline mode before it is imported.

LatentLoom never downloads anything: configs and tokenizer files ship in ``resources/``. The
libraries read these variables once, when they are first imported, so every module of
``core.diffusion`` imports this one first. If ``huggingface_hub`` was imported earlier by
someone else, its already-evaluated constant is switched off too.
"""

from __future__ import annotations

import os
import sys

OFFLINE_ENVIRONMENT: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DISABLE_TELEMETRY": "1",
}
#: Quiet by default (the CLI and the editor show their own progress); a user may turn it on.
QUIET_ENVIRONMENT: dict[str, str] = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def enforce_offline() -> None:
    """Set the offline variables and patch any hub constant that was read before we ran."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True


enforce_offline()
