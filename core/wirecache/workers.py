"""Several worker processes on one host: ``wirecache serve --workers N``.

How it works, and why it is kept this simple:

* The parent process serves nothing. It re-invokes the same command line,
  ``python -m wirecache <its own arguments> --worker-index I``, N times (so a
  worker builds exactly the configuration the parent validated) and then only
  waits for them.
* Each worker is an ordinary in-process server except that it opens its
  listening sockets with ``SO_REUSEPORT`` (the kernel spreads new connections
  over the workers) and its caches keep their table versions in a
  shared-memory file the parent publishes (``VersionStore(shared=True)``):
  every bump is a locked increment there and every hit reads the counters, so
  a write acknowledged through one worker invalidates the results every other
  worker holds. L2 entries live in the same directory for all workers; L1
  stays per process and is validated against the shared versions on every
  hit.
* Workers run in their own process group, so a Ctrl-C at a terminal reaches
  the parent only; the parent forwards every SIGINT/SIGTERM to each worker,
  which drains like a single process does. Each worker reads a pipe from the
  parent on stdin: if the parent dies without forwarding (SIGKILL), the pipe
  closes and the workers drain and stop on their own.
* The parent exits once every worker has exited: 0 when they all stopped
  cleanly after a signal. If a worker exits on its own (a crash, a port it
  cannot bind), the parent stops the others and exits non-zero — a worker is
  not restarted.

Port 0 ("any free port") cannot be shared: every process would get a port of
its own. Workers therefore need an explicit listen port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from types import FrameType

import structlog

from wirecache.cache.store import EntryStore
from wirecache.cache.versions import VersionStore
from wirecache.config import ConfigError, ServerConfig

log = structlog.get_logger("wirecache.workers")

#: The hidden ``serve`` option that makes a process one of the workers.
WORKER_FLAG = "--worker-index"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def check(config: ServerConfig) -> None:
    """Refuse configurations that several workers cannot share."""
    if config.workers <= 1:
        return
    for cache in config.caches:
        if cache.listen.port == 0:
            raise ConfigError(
                f"cache ({cache.id}).listen: workers = {config.workers} needs an explicit port; "
                "port 0 would give every worker a different port"
            )


def _prepare(config: ServerConfig) -> list[VersionStore]:
    """Make what the workers would otherwise race to create, once, before they start:
    the L2 key filters they share, and the version stores of the caches, their
    counters published for the workers (see VersionStore.publish), returned."""
    if any(not (c.client_tls_cert and c.client_tls_key) for c in config.caches):
        from wirecache import tls

        tls.self_signed(config.cache_dir / "tls")
    # Opened here, each store moves to a new epoch if the last run did not close it
    # cleanly, and stays "dirty" until every worker has stopped cleanly.
    stores = []
    for cache in config.caches:
        if cache.disk_budget > 0:
            EntryStore.publish_filter(config.cache_dir / cache.id / "entries")
        directory = config.cache_dir / cache.id / "versions"
        directory.mkdir(parents=True, exist_ok=True)
        store = VersionStore(directory)
        store.publish()
        stores.append(store)
    return stores


def supervise(config: ServerConfig, argv: list[str]) -> int:
    """Run ``config.workers`` workers with the command line ``argv`` until they exit."""
    check(config)
    stores = _prepare(config)
    stopping: int | None = None  # the signal that asked us to stop
    failed = False
    live: dict[int, int] = {}  # pid -> worker index
    procs: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping is None:
            stopping = signum
        for pid in list(live):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {s: signal.signal(s, forward) for s in _STOP_SIGNALS}
    try:
        for index in range(config.workers):
            if stopping is not None:
                break
            proc = subprocess.Popen(
                [sys.executable, "-m", "wirecache", *argv, WORKER_FLAG, str(index)],
                stdin=subprocess.PIPE,
                process_group=0,
            )
            procs.append(proc)
            live[proc.pid] = index
        log.info("workers.started", workers=len(procs), pids=[p.pid for p in procs])
        while live:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = live.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            for proc in procs:
                if proc.pid == pid:
                    proc.returncode = code
            clean = code == 0 or (stopping is not None and -code in _STOP_SIGNALS)
            if stopping is None or not clean:
                log.error("worker.exited", worker=index, pid=pid, code=code)
                failed = True
            if stopping is None:
                # A worker that stops on its own takes the others down with it.
                forward(signal.SIGTERM, None)
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for store in stores:
            # (A worker that crashed may have stopped in the middle of a bump.)
            store.close(clean=store.absorb() and not failed and not live)
    log.info("workers.stopped", failed=failed)
    return 1 if failed else 0
