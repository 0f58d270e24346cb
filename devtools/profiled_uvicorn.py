"""A service's server under cProfile on the thread's CPU clock, switched on and off by signals.

`python -m devtools.profiled_uvicorn OUT.prof <onbehalf.server arguments>`: SIGUSR1 starts counting,
SIGUSR2 stops and writes the statistics to OUT.prof, so a benchmark profiles the steady state
and not the start-up. Set by onbehalf.stack when ONBEHALF_PROFILE_DIR names a folder."""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["onbehalf.server", *sys.argv[2:]]
    # CPU time, not wall time: an awaiting coroutine costs nothing while it waits.
    profile = cProfile.Profile(time.thread_time)

    def start(_signal: int, _frame: FrameType | None) -> None:
        profile.enable()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module("onbehalf.server", run_name="__main__")


if __name__ == "__main__":
    main()
