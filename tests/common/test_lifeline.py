"""A worker's watchdog ends it when the main process exits (pidfd, or polling without one)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

WATCH = textwrap.dedent(
    """
    import os, subprocess, sys, threading
    try:
        from superlab.common import lifeline
        if sys.argv[1] == "poll":
            del os.pidfd_open  # as on a system without pidfds
        main = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        threading.Thread(target=main.wait).start()  # reap it, so its pid is really gone
        lifeline._watch(main.pid, os.getppid())
    except BaseException:
        os._exit(3)  # not the watchdog's exit
    os._exit(4)  # the watchdog returned
    """
)


@pytest.mark.parametrize("how", ["pidfd", "poll"])
def test_watchdog_ends_the_worker_when_main_exits(how: str) -> None:
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", WATCH, how], timeout=30)
    assert done.returncode == 1  # os._exit(1) from the watchdog, not a normal end
    assert time.monotonic() - t0 < 10
