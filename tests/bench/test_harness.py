"""The benchmark harness end to end: short runs must give complete, sane output.

Timing is never asserted (a loaded CI machine is slow, not wrong); what is
asserted is that every scenario × target cell is measured, counted and drawn.
The proxy targets are a plain relay (no wirecache needed to test the harness),
and one run goes through the latency-injecting relay for ``--origin-rtt``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
from wirecache import bench
from wirecache.bench import relay
from wirecache.bench.latency import spawn_relay, stop
from wirecache.bench.origin import Endpoint, local_postgres
from wirecache.bench.report import MAX_NINES, cdf_svg
from wirecache.bench.runner import CHART_QUANTILES, Result
from wirecache.bench.scenarios import SCENARIOS

pytestmark = pytest.mark.skipif(
    shutil.which("pgbench") is None or shutil.which("psql") is None,
    reason="pgbench/psql not installed",
)


@pytest.fixture(scope="module")
def origin() -> Iterator[Endpoint]:
    with local_postgres() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def relay_target(origin: Endpoint) -> Iterator[str]:
    proc, host, port = spawn_relay("127.0.0.1:0", origin.address)
    try:
        yield f"relay={host}:{port}"
    finally:
        stop(proc)


def run_bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return bench.run(parser.parse_args(argv))


def check_outputs(out: str, json_path: Path, html_path: Path, cells: set[tuple]) -> None:
    """Every cell has both targets with plausible figures in all three outputs."""
    document = json.loads(json_path.read_text())
    results = document["results"]
    assert {(r["scenario"], r["mode"], r["clients"], r["target"]) for r in results} == cells
    for r in results:
        assert r["transactions"] > 0 and r["failed"] == 0 and r["tps"] > 0
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert len(r["quantiles_ms"]) == len(CHART_QUANTILES)
        assert r["quantiles_ms"] == sorted(r["quantiles_ms"])
        assert r["sent"] > 0 and r["reached_origin"] >= 0
        if r["target"] == "direct":
            assert r["ratio_vs_direct"] == 1 and r["hit_ratio"] is None
            assert r["proxy_cpu_s"] is None
            # Every read of a plain client reaches the origin: the counter is exact.
            assert r["reached_origin"] == r["sent"], r
        else:
            # A plain relay caches nothing, so the harness must report no hits.
            assert r["hit_ratio"] == 0 and r["reached_origin"] == r["sent"], r
            assert r["proxy_cpu_s"] is not None and r["proxy_cpu_s"] >= 0
    assert document["meta"]["counted"].startswith("SELECT statements")
    for scenario in {c[0] for c in cells}:
        assert scenario in out
    assert "p99 ms" in out and "relay" in out
    page = html_path.read_text()
    assert page.count("<svg") == len({c[:3] for c in cells})
    assert "<script" not in page and not re.search(r"(src|href)=", page)


def test_every_scenario_direct_and_relay(
    origin: Endpoint, relay_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    rc = run_bench(
        [
            "--origin",
            origin.address,
            "--scenario",
            "all",
            "--mode",
            "extended",
            "--transactions",
            "40",
            "--warmup",
            "0",
            "--target",
            "direct",
            "--target",
            relay_target,
            "--json",
            str(json_path),
            "--html",
            str(html_path),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    cells = {(s, "extended", 1, t) for s in SCENARIOS for t in ("direct", "relay")}
    check_outputs(out, json_path, html_path, cells)


def test_modes_clients_warmup_and_far_origin(
    origin: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two protocol modes, two client counts, a warm-up, and the origin 4 ms away.

    The relay target gets its own 4 ms relay to the origin, since its address must
    be known before the harness creates the far path for direct.
    """
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    proc, host, port = spawn_relay("127.0.0.1:0", origin.address, delay_ms=4)
    try:
        rc = run_bench(
            [
                "--origin",
                origin.address,
                "--scenario",
                "point-hot",
                "--mode",
                "simple,prepared",
                "--clients",
                "1,2",
                "--transactions",
                "30",
                "--warmup",
                "1",
                "--origin-rtt",
                "4ms",
                "--latency-method",
                "relay",
                "--target",
                "direct",
                "--target",
                f"relay={host}:{port}",
                "--json",
                str(json_path),
                "--html",
                str(html_path),
            ]
        )
    finally:
        stop(proc)
    out = capsys.readouterr().out
    assert rc == 0, out
    cells = {
        (s, m, c, t)
        for s in ("point-hot",)
        for m in ("simple", "prepared")
        for c in (1, 2)
        for t in ("direct", "relay")
    }
    check_outputs(out, json_path, html_path, cells)
    meta = json.loads(json_path.read_text())["meta"]
    assert meta["origin_path"]["method"] == "relay" and meta["origin_path"]["rtt_ms"] == 4
    assert "via relay" in out


def test_list_shows_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_bench(["--list"]) == 0
    out = capsys.readouterr().out
    for name in SCENARIOS:
        assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "pgbouncer"], "needs =HOST:PORT"),
        (["--target", "direct=127.0.0.1:1"], "direct is the origin"),
        (["--scenario", "nope"], "unknown nope"),
        (["--origin-rtt", "fast"], "not a duration"),
    ],
)
def test_bad_arguments_are_rejected(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert message in capsys.readouterr().err


async def test_delayed_relay_keeps_order_and_adds_the_delay() -> None:
    """A bulk transfer arrives intact and in order; an exchange takes at least the RTT."""
    payload = bytes(range(256)) * 4096  # 1 MiB, many chunks through the bounded buffer

    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                await stream.send_all(data)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        echo_port = listeners[0].socket.getsockname()[1]
        relay_port = await nursery.start(relay.serve, "127.0.0.1", 0, "127.0.0.1", echo_port, 0.03)
        stream = await trio.open_tcp_stream("127.0.0.1", relay_port)
        started = time.monotonic()
        await stream.send_all(b"ping")
        assert await stream.receive_some(4) == b"ping"
        assert time.monotonic() - started >= 0.03

        async def sender() -> None:
            await stream.send_all(payload)

        nursery.start_soon(sender)
        received = bytearray()
        while len(received) < len(payload):
            received += await stream.receive_some(65536)
        assert bytes(received) == payload
        await stream.aclose()
        nursery.cancel_scope.cancel()


def test_chart_draws_up_to_p9999_and_its_axis_ends_there() -> None:
    """p99.99 is plotted (1 - 0.9999 rounds below 1e-4 in floating point), and the
    maximum, which is not plotted, does not stretch the latency axis."""
    quantiles = [0.05 if q < 0.9999 else 1.0 for q in CHART_QUANTILES]
    quantiles[-1] = 100.0  # the maximum: an outlier far right
    result = Result(
        *("point-hot", "simple", 1, "wirecache", 1000, 0, 1.0, 0.05, 0.05, 0.05, 0.05, 100.0),
        *("SELECT", 1000, 0, 1.0, None, None, quantiles),
    )
    svg = cdf_svg([result], width=720, height=320)
    points = re.search(r'<polyline[^>]*points="([^"]*)"', svg)[1].split()
    xs, ys = zip(*((float(a), float(b)) for a, b in (p.split(",") for p in points)), strict=True)
    assert MAX_NINES == 4 and min(ys) == 12.0  # the top of the plot is p99.99, and it is drawn
    assert max(xs) == 720 - 16  # p99.99 (1 ms) is the right edge, not the 100 ms maximum
    assert ">100<" not in svg
