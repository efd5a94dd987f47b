"""Why a run (grow, audio) ended. String-valued, so JSON output and the runs table keep the
plain words."""

from __future__ import annotations

from enum import StrEnum


class Stopped(StrEnum):
    DONE = "done"  # everything asked for is done
    EXHAUSTED = "exhausted"  # grow: nothing left to find
    BUDGET = "budget"  # grow: the daily request budget is spent
    OFFLINE = "offline"  # audio: the preview server cannot be reached
    INTERRUPTED = "interrupted"  # Ctrl-C (or a stop asked for): the current item finished
    TERMINATED = "terminated"  # SIGTERM: the current item finished
