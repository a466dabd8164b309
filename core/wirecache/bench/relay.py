"""A TCP relay written with trio, optionally delaying each direction.

It has two jobs in the harness. With a delay it is the portable way to put
the origin far away (``--origin-rtt`` where netns/netem is unavailable): every
chunk is held for rtt/2 in each direction, in order, behind a bounded buffer,
so a request/response exchange costs one extra round trip of exactly ``rtt``
while bulk transfers still stream. Without a delay it is the "naive Python
relay" baseline target and the glue that carries the origin across a network
namespace.

Run as ``python -m wirecache.bench.relay --listen HOST:PORT --connect HOST:PORT
[--delay-ms MS]``; it prints ``listening HOST:PORT`` once it accepts.
"""

from __future__ import annotations

import argparse
import math
import sys

import trio

CHUNK = 65536
# Chunks in flight per direction: bounds memory to CHUNK * BUFFERED_CHUNKS per
# direction, after which the reader stops and TCP pushes back on the sender.
BUFFERED_CHUNKS = 64


async def _pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    """Copy bytes until EOF, then half-close so the peer sees the end of stream."""
    while data := await src.receive_some(CHUNK):
        await dst.send_all(data)
    await dst.send_eof()


async def _delayed_pump(src: trio.SocketStream, dst: trio.SocketStream, delay: float) -> None:
    """Copy bytes, each chunk released ``delay`` seconds after it arrived.

    One FIFO per direction and a constant delay keep the byte order; the
    bounded channel keeps memory bounded when the receiver is slow.
    """
    send, receive = trio.open_memory_channel[tuple[float, bytes]](BUFFERED_CHUNKS)

    async def reader() -> None:
        async with send:
            while data := await src.receive_some(CHUNK):
                await send.send((trio.current_time() + delay, data))

    async def writer() -> None:
        async with receive:
            async for due, data in receive:
                await trio.sleep_until(due)
                await dst.send_all(data)
        await dst.send_eof()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        nursery.start_soon(writer)


async def serve(
    listen_host: str,
    listen_port: int,
    connect_host: str,
    connect_port: int,
    delay: float,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections and relay each one to the upstream address."""
    one_way = delay / 2

    async def handle(client: trio.SocketStream) -> None:
        try:
            upstream = await trio.open_tcp_stream(connect_host, connect_port)
        except OSError:
            await client.aclose()
            return
        async with client, upstream:
            try:
                async with trio.open_nursery() as nursery:
                    if one_way > 0:
                        nursery.start_soon(_delayed_pump, client, upstream, one_way)
                        nursery.start_soon(_delayed_pump, upstream, client, one_way)
                    else:
                        nursery.start_soon(_pump, client, upstream)
                        nursery.start_soon(_pump, upstream, client)
            except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                # One side went away; closing both is all that is left to do. The errors
                # come grouped from the nursery: a server that speaks first (MySQL) answers
                # even a bare connect-and-close such as the readiness probe, and a plain
                # except would let the group through and end the whole relay.
                pass

    listeners = await trio.open_tcp_listeners(listen_port, host=listen_host, backlog=256)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m wirecache.bench.relay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--listen", required=True, help="HOST:PORT (port 0 picks a free one)")
    parser.add_argument("--connect", required=True, help="upstream HOST:PORT")
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="added round-trip time; half of it each direction",
    )
    args = parser.parse_args(argv)
    listen, connect = _address(args.listen), _address(args.connect)
    if not math.isfinite(args.delay_ms) or args.delay_ms < 0:
        parser.error("--delay-ms must be a non-negative number")

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve, *listen, *connect, args.delay_ms / 1000)
            print(f"listening {listen[0]}:{port}", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
