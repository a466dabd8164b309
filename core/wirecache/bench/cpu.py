"""CPU time of a proxy process, read from /proc.

The harness reports proxy CPU seconds per run because throughput alone hides
cost: a proxy that matches the origin's speed while burning a whole core is
not the same as one that idles. For a target given only as an address, the
process is found through the listening socket, so PgBouncer or a relay gets
the same column as a wirecache the harness started.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LISTEN = "0A"


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU of ``pid`` and all its descendants (workers), live and reaped."""
    stats = {
        int(p.name): f
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (f := _stat(int(p.name))) is not None
    }
    if pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for child, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(child)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        # utime, stime, cutime, cstime are fields 14-17 of stat; 11-14 after the name.
        total += sum(int(v) for v in stats[current][11:15])
        todo += children.get(current, [])
    return total / CLOCK_TICKS


class CpuMeter:
    """CPU seconds of a process tree over a ``with`` block; ``seconds`` is None when there
    is no process (``pid`` None) or it could not be read before and after."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.seconds: float | None = None
        self._before: float | None = None

    def __enter__(self) -> CpuMeter:
        self._before = cpu_seconds(self.pid) if self.pid else None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        after = cpu_seconds(self.pid) if self.pid else None
        if self._before is not None and after is not None:
            self.seconds = after - self._before


def listener_pid(host: str, port: int) -> int | None:
    """The process that owns the TCP socket listening on host:port, if it is local to us."""
    try:
        packed = socket.inet_aton(socket.gethostbyname(host))
    except OSError:
        return None
    wanted = {f"{int.from_bytes(packed, 'little'):08X}:{port:04X}", f"00000000:{port:04X}"}
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] in wanted and fields[3] == LISTEN:
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None
