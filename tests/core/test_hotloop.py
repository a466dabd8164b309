"""The hot loop serves ready sockets with handlers and still lets trio do its work."""

from __future__ import annotations

import trio
from wirecache.hotloop import HotLoop
from wirecache.sockets import DirectStream, direct


async def _pair() -> tuple[DirectStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return direct(trio.SocketStream(a)), trio.SocketStream(b)


async def _started(nursery: trio.Nursery) -> HotLoop:
    # (Not trio.testing.wait_all_tasks_blocked: the loop itself waits for that,
    # and two such waiters are woken in the same batch; see HotLoop.run.)
    loop = HotLoop()
    nursery.start_soon(loop.run)
    with trio.fail_after(2):
        while not loop.enabled:
            await trio.sleep(0.001)
    return loop


class Echo:
    """Answers every chunk at once; gives up (False) on b"stop"."""

    def __init__(self, stream: DirectStream) -> None:
        self.stream = stream
        self.calls = 0

    def __call__(self) -> bool:
        data = self.stream.receive_nowait()
        if data is None:
            return True
        self.calls += 1
        if data == b"stop":
            return False
        if data == b"boom":
            raise ValueError("bad bytes")
        assert self.stream.send_nowait(data.upper()) == len(data)
        return True


async def test_the_loop_is_enabled_on_this_trio() -> None:
    # If a trio upgrade moves its internals, the loop falls back to trio's own
    # waits: correct but slow. This test says so.
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        assert loop.enabled
        nursery.cancel_scope.cancel()


async def test_handler_answers_until_it_gives_up() -> None:
    ours, peer = await _pair()
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        echo = Echo(ours)
        served = trio.Event()

        async def park() -> None:
            await loop.serve(ours, echo)
            served.set()

        nursery.start_soon(park)
        for word in (b"one", b"two", b"three"):
            await peer.send_all(word)
            assert await peer.receive_some() == word.upper()
        assert not served.is_set()
        await peer.send_all(b"stop")
        with trio.fail_after(2):
            await served.wait()
        assert echo.calls == 4
        nursery.cancel_scope.cancel()


async def test_what_the_handler_raises_is_raised_in_its_task() -> None:
    ours, peer = await _pair()
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        raised: list[BaseException] = []

        async def park() -> None:
            try:
                await loop.serve(ours, Echo(ours))
            except ValueError as e:
                raised.append(e)

        nursery.start_soon(park)
        await peer.send_all(b"boom")
        with trio.fail_after(2):
            while not raised:
                await trio.sleep(0.01)
        assert str(raised[0]) == "bad bytes"
        nursery.cancel_scope.cancel()


async def test_cancelling_a_parked_task_unparks_it() -> None:
    ours, peer = await _pair()
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        with trio.move_on_after(0.1) as scope:
            await loop.serve(ours, Echo(ours))
        assert scope.cancelled_caught
        # Parked no more: bytes now wait for whoever reads next.
        await peer.send_all(b"later")
        assert await ours.receive_some() == b"later"
        nursery.cancel_scope.cancel()


async def test_trio_keeps_running_while_a_socket_is_parked() -> None:
    """Timers, other sockets and events set by handlers all get through."""
    ours, peer = await _pair()
    other, other_peer = trio.socket.socketpair()
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        woken = trio.Event()

        def wake_other_task() -> bool:
            assert ours.receive_nowait() is not None
            woken.set()  # another task is runnable now; the loop must yield to trio
            return True

        nursery.start_soon(loop.serve, ours, wake_other_task)
        await trio.sleep(0.01)
        with trio.fail_after(5):
            start = trio.current_time()
            await trio.sleep(0.05)  # a deadline while the loop blocks in its epoll
            assert trio.current_time() - start < 1

            async def read_other() -> bytes:
                return await other.recv(10)

            async with trio.open_nursery() as inner:
                got: list[bytes] = []

                async def reader() -> None:
                    got.append(await read_other())

                inner.start_soon(reader)
                await trio.sleep(0.01)
                await other_peer.send(b"trio fd")  # a socket trio itself waits on
            assert got == [b"trio fd"]

            start = trio.current_time()
            await peer.send_all(b"x")
            await woken.wait()
            assert trio.current_time() - start < 0.5, "the woken task waited for a deadline"
        nursery.cancel_scope.cancel()
    other.close()
    other_peer.close()


async def test_one_task_parks_on_several_sockets() -> None:
    """A request/response relay waits for either leg in one park; the first handler
    that gives up wakes the task, and then none of its sockets is parked any more."""
    a, a_peer = await _pair()
    b, b_peer = await _pair()
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        echo_a, echo_b = Echo(a), Echo(b)
        served = trio.Event()

        async def park() -> None:
            await loop.serve(a, echo_a, (b, echo_b))
            served.set()

        nursery.start_soon(park)
        await a_peer.send_all(b"one")
        assert await a_peer.receive_some() == b"ONE"
        await b_peer.send_all(b"two")
        assert await b_peer.receive_some() == b"TWO"
        assert not served.is_set()
        await b_peer.send_all(b"stop")
        with trio.fail_after(2):
            await served.wait()
        assert (echo_a.calls, echo_b.calls) == (1, 2)
        # Both unparked: bytes now wait for whoever reads next.
        await a_peer.send_all(b"later")
        assert await a.receive_some() == b"later"
        nursery.cancel_scope.cancel()


async def test_several_sockets_without_the_loop() -> None:
    """The same through trio's waits when the loop is not running."""
    a, a_peer = await _pair()
    b, b_peer = await _pair()
    loop = HotLoop()
    assert not loop.enabled
    echo_a, echo_b = Echo(a), Echo(b)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(loop.serve, a, echo_a, (b, echo_b))
        await b_peer.send_all(b"two")
        assert await b_peer.receive_some() == b"TWO"
        await a_peer.send_all(b"stop")
    assert (echo_a.calls, echo_b.calls) == (1, 1)


async def test_cancelling_unparks_every_socket_of_the_task() -> None:
    a, _a_peer = await _pair()
    b, b_peer = await _pair()
    async with trio.open_nursery() as nursery:
        loop = await _started(nursery)
        with trio.move_on_after(0.1) as scope:
            await loop.serve(a, Echo(a), (b, Echo(b)))
        assert scope.cancelled_caught
        await b_peer.send_all(b"later")
        assert await b.receive_some() == b"later"
        # And they may be parked again.
        with trio.move_on_after(0.05):
            await loop.serve(b, Echo(b), (a, Echo(a)))
        nursery.cancel_scope.cancel()
