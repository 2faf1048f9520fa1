"""Pool workers that end when the process that started them dies, however it dies."""

from __future__ import annotations

import os
import select
import threading
import time

WATCH_S = 0.5  # how often a worker looks for its main process where it cannot wait on it


def die_with(main_pid: int) -> None:
    """Pool initializer: end this worker as soon as the process ``main_pid`` has exited.

    A pool's workers block reading their task queue, whose write end they hold themselves,
    so a main process killed by SIGKILL (or the OOM killer) leaves them running forever.
    Under ``forkserver`` they are children of the fork server, not of the main process,
    so PR_SET_PDEATHSIG (which fires on the parent's death) cannot help; and the fork
    server and the resource tracker stay up while any worker holds their pipes' write
    ends (CPython 3.11 ``multiprocessing/forkserver.py`` hands each child the server's
    "alive" fd). So each worker watches the main process itself, from a daemon thread:
    on Linux >= 5.3 by waiting on a pidfd (readable when the process exits, no PID-reuse
    race), elsewhere by polling. Once the workers are gone, the fork server and the
    resource tracker read EOF and exit too.
    """
    threading.Thread(
        target=_watch, args=(main_pid, os.getppid()), name="superlab-die-with", daemon=True
    ).start()


def _watch(main_pid: int, parent: int) -> None:
    try:
        pidfd: int | None = os.pidfd_open(main_pid)
    except ProcessLookupError:
        os._exit(1)  # gone before we started
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        pidfd = None
    while True:
        if pidfd is not None:
            if select.select([pidfd], [], [], WATCH_S)[0]:
                break
        elif not _exists(main_pid):
            break
        else:
            time.sleep(WATCH_S)
        if os.getppid() != parent:  # our own parent died (the fork server, or main under spawn)
            break
    # No cleanup: the main process is gone and nobody will read what this worker makes;
    # every output is written to a temporary name first, so nothing half-written remains.
    os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
