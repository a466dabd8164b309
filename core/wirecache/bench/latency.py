"""Putting the origin at a chosen round-trip time on a single machine.

wirecache exists for applications whose database is tens of milliseconds
away, so the benchmark must be able to move the origin away. Two methods:

* ``netns``: a network namespace joined by a veth pair with ``tc netem`` delay
  on both ends. The kernel delays real packets (handshakes and ACKs included),
  which is the most faithful picture. Two zero-delay relays carry the origin's
  port across (the origin usually listens on loopback only, which a namespace
  cannot reach). Needs root and the ``sch_netem`` qdisc.
* ``relay``: the trio relay of :mod:`wirecache.bench.relay` holding every chunk
  for rtt/2 in each direction. Works anywhere, without privileges.

Every target (direct and wirecache alike) is pointed at the far address, so
they all pay the same path. Only addresses inside the namespace we create, or
loopback, are used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .origin import Endpoint, parse_address, wait_for_port


@dataclass(frozen=True)
class FarOrigin:
    """Where the clients should connect to reach the delayed origin, and how it was done."""

    endpoint: Endpoint
    method: str  # "none", "netns" or "relay"
    rtt_ms: float
    note: str = ""


def spawn_relay(
    listen: str, connect: str, delay_ms: float = 0.0, prefix: list[str] | None = None
) -> tuple[subprocess.Popen[str], str, int]:
    """Start the trio relay as its own process; return it and the address it listens on.

    A separate process keeps the relay's CPU off the harness and lets it run
    inside a namespace through an ``ip netns exec`` prefix.
    """
    proc = subprocess.Popen(
        [
            *(prefix or []),
            sys.executable,
            "-m",
            "wirecache.bench.relay",
            "--listen",
            listen,
            "--connect",
            connect,
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"relay did not start: {err.strip()}")
    host, port = parse_address(line[1])
    wait_for_port(host, port, 10)
    return proc, host, port


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate a helper process we started, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 for the veth pair that overlaps no address already configured here."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    taken = [
        ipaddress.ip_interface(word).network
        for word in used.split()
        if "/" in word and word[0].isdigit()
    ]
    for third in range(os.getpid() % 200, 256):
        net = ipaddress.ip_network(f"10.213.{third}.0/30")
        if not any(net.overlaps(other) for other in taken):
            return net
    raise RuntimeError("no free 10.213.x.0/30 subnet for the veth pair")


@contextlib.contextmanager
def _netns_path(origin: Endpoint, rtt_ms: float) -> Iterator[FarOrigin]:
    """Namespace + veth + netem; each crossing of the veth costs rtt/4.

    A request crosses twice (client→namespace relay→host relay) and so does the
    response, hence four crossings per round trip.
    """
    name = f"wcb{os.getpid()}"
    host_if, ns_if = f"{name}h", f"{name}n"
    net = _free_subnet()
    host_ip, ns_ip = (str(a) for a in list(net.hosts())[:2])
    one_crossing = f"{rtt_ms / 4:.3f}ms"
    relays: list[subprocess.Popen[str]] = []
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        _run("ip", "-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _run("ip", "-n", name, "link", "set", ns_if, "up")
        _run("ip", "-n", name, "link", "set", "lo", "up")
        _run(
            "tc",
            "qdisc",
            "add",
            "dev",
            host_if,
            "root",
            "netem",
            "delay",
            one_crossing,
            "limit",
            "100000",
        )
        _run(
            "ip",
            "netns",
            "exec",
            name,
            "tc",
            "qdisc",
            "add",
            "dev",
            ns_if,
            "root",
            "netem",
            "delay",
            one_crossing,
            "limit",
            "100000",
        )
        inner, _, inner_port = spawn_relay(f"{host_ip}:0", origin.address)
        relays.append(inner)
        outer, host, port = spawn_relay(
            f"{ns_ip}:0", f"{host_ip}:{inner_port}", prefix=["ip", "netns", "exec", name]
        )
        relays.append(outer)
        yield FarOrigin(
            origin.with_address(host, port),
            "netns",
            rtt_ms,
            f"namespace {name}, veth {host_ip}<->{ns_ip}, netem {one_crossing} per crossing",
        )
    finally:
        for proc in relays:
            stop(proc)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


@contextlib.contextmanager
def _relay_path(origin: Endpoint, rtt_ms: float, note: str) -> Iterator[FarOrigin]:
    proc, host, port = spawn_relay("127.0.0.1:0", origin.address, rtt_ms)
    try:
        yield FarOrigin(
            origin.with_address(host, port),
            "relay",
            rtt_ms,
            f"{note}trio relay, {rtt_ms / 2:g} ms each direction",
        )
    finally:
        stop(proc)


@contextlib.contextmanager
def far_origin(origin: Endpoint, rtt_ms: float, method: str = "auto") -> Iterator[FarOrigin]:
    """Yield an address at which ``origin`` answers ``rtt_ms`` later than it does now.

    ``origin`` only needs ``address`` and ``with_address`` (the MySQL bench passes
    its own endpoint type; both methods relay bytes, whatever the protocol).

    ``auto`` tries netns/netem when running as root and falls back to the relay,
    saying why in the note, so the report always names the method really used.
    """
    if rtt_ms <= 0:
        yield FarOrigin(origin, "none", 0.0)
        return
    if method not in ("auto", "netns", "relay"):
        raise ValueError(f"unknown latency method {method!r}")
    note = ""
    with contextlib.ExitStack() as stack:
        far: FarOrigin | None = None
        if method in ("auto", "netns"):
            if os.geteuid() != 0:
                if method == "netns":
                    raise RuntimeError("--latency-method netns needs root")
                note = "not root, so no netns/netem; "
            else:
                try:
                    far = stack.enter_context(_netns_path(origin, rtt_ms))
                except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
                    if method == "netns":
                        raise
                    detail = (
                        exc.stderr.strip()
                        if isinstance(exc, subprocess.CalledProcessError)
                        else str(exc)
                    )
                    note = f"netns/netem unavailable ({detail}); "
        if far is None:
            far = stack.enter_context(_relay_path(origin, rtt_ms, note))
        yield far
