"""Serve ready sockets with synchronous handlers while trio has nothing else to run.

Relaying a small message through trio costs a pass of its scheduler each time
a task waits and wakes: on the 2-core machine of bench/README.md that pass
(epoll re-arm, run-loop bookkeeping, resuming the task) cost more than
PostgreSQL needs to answer a primary-key read, and a relayed statement takes
two. A plain ``epoll`` loop calling a function per ready socket is several
times cheaper, which is how PgBouncer keeps up.

:class:`HotLoop` gives a session that loop without leaving trio. A task
parks on :meth:`HotLoop.serve` with a socket and a synchronous handler; one
task per process (:meth:`HotLoop.run`) waits until every other trio task is
blocked (``trio.testing.wait_all_tasks_blocked``), then blocks in its own
level-triggered epoll, which also watches trio's own epoll descriptor, and
calls the handlers of ready sockets directly. It returns to trio as soon as
trio has work of its own (a descriptor of trio's is ready, a deadline is due,
a handler woke its task to continue asynchronously). So trio keeps owning
everything (accepting, TLS, timeouts, cancellation, the slow paths of the
dialects) and the common case — bytes in, bytes out — never touches its
scheduler.

trio does not publish the descriptor of its epoll, so it is read from the run
loop's I/O manager (a private attribute). If it cannot be found (another trio
version or another platform), :meth:`HotLoop.serve` waits through trio as
before (:attr:`HotLoop.enabled` is False): slower, never wrong.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable, Sized

import outcome
import structlog
import trio
from trio.lowlevel import Abort, Task, current_statistics, current_task, reschedule
from trio.testing import wait_all_tasks_blocked

from wirecache.sockets import DirectStream

log = structlog.get_logger("wirecache.hotloop")

#: A handler is called with its socket readable (or closed). It returns True to be
#: called again on the next bytes, False to wake its task, which goes on
#: asynchronously; what it raises is raised in its task.
Handler = Callable[[], bool]

_READY = select.EPOLLIN | select.EPOLLRDHUP


def _trio_internals() -> tuple[int, Sized] | None:
    """The descriptor of trio's own epoll in this run and its queue of runnable
    tasks (cheaper to look at than ``current_statistics()`` after every event),
    if trio's internals are as expected."""
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT

        runner = GLOBAL_RUN_CONTEXT.runner
        return int(runner.io_manager._epoll.fileno()), runner.runq
    except (ImportError, AttributeError, RuntimeError):
        return None


class HotLoop:
    """One per trio run (per worker process); see the module docstring."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        #: fd -> its handler, the parked task, and every fd that task parked on.
        self._parked: dict[int, tuple[Handler, Task, tuple[int, ...]]] = {}
        self._trio_fd: int | None = None
        self._runnable: Sized = ()
        self._work = trio.Event()
        #: Whether ready sockets are served without trio (set by :meth:`run`).
        self.enabled = False

    async def run(self) -> None:
        """Serve parked sockets until cancelled."""
        internals = _trio_internals()
        if internals is None:
            log.warning("hotloop.disabled", reason="trio's epoll descriptor not found")
            return
        self._trio_fd, self._runnable = internals
        self._epoll.register(self._trio_fd, select.EPOLLIN)
        self.enabled = True
        try:
            while True:
                if not self._parked:
                    self._work = trio.Event()
                    await self._work.wait()
                # Wakes once nothing else can run. Other waiters for that are
                # woken in the same batch and would wait behind this loop's
                # epoll: nothing else in wirecache may use it.
                await wait_all_tasks_blocked()
                self._serve_until_trio_has_work()
        finally:
            self.enabled = False
            self._epoll.close()
            tasks = {id(task): task for _, task, _ in self._parked.values()}
            self._parked.clear()
            for task in tasks.values():
                reschedule(task, outcome.Error(trio.ClosedResourceError()))

    def _serve_until_trio_has_work(self) -> None:
        poll = self._epoll.poll
        parked = self._parked
        trio_fd = self._trio_fd
        runnable = self._runnable
        # Nothing of trio's runs until this returns, so its next deadline holds.
        wait = current_statistics().seconds_to_next_deadline
        due = None if math.isinf(wait) else time.monotonic() + wait
        while parked:
            events = poll(-1 if due is None else max(due - time.monotonic(), 0.0))
            if not events:
                return  # a deadline is due
            back_to_trio = False
            for fd, _ in events:
                if fd == trio_fd:
                    back_to_trio = True
                elif fd in parked:
                    back_to_trio |= self._dispatch(fd)
            if back_to_trio or runnable:
                return  # (a handler may have set an event another task waits on)

    def _dispatch(self, fd: int) -> bool:
        """Call the handler of ``fd``; True when its task was woken."""
        handler, task, fds = self._parked[fd]
        try:
            if handler():
                return False
            result: outcome.Outcome[None] = outcome.Value(None)
        except BaseException as e:  # delivered to the task, which raises it
            result = outcome.Error(e)
        self._unpark(fds)
        reschedule(task, result)
        return True

    def _unpark(self, fds: tuple[int, ...]) -> None:
        for fd in fds:
            if self._parked.pop(fd, None) is not None:
                self._epoll.unregister(fd)

    async def serve(
        self, stream: DirectStream, handler: Handler, *more: tuple[DirectStream, Handler]
    ) -> None:
        """Call ``handler`` whenever ``stream`` has bytes, until it returns False.

        Returns then (or raises what the handler raised). With ``more``
        (stream, handler) pairs, the task waits on all its streams at once
        (a request/response relay waiting for either side) and this returns
        as soon as any handler returns False. Cancellation (e.g. draining)
        unparks at once. When the hot loop is not running, this waits through
        trio and calls the handlers the same way.
        """
        pairs = ((stream, handler), *more)
        if not self.enabled:
            await _serve_through_trio(pairs)
            return
        fds = tuple(s.fileno() for s, _ in pairs)
        if len(set(fds)) != len(fds) or any(fd in self._parked for fd in fds):
            raise RuntimeError("a descriptor is parked twice")
        task = current_task()
        try:
            for fd, (_, h) in zip(fds, pairs, strict=True):
                self._epoll.register(fd, _READY)
                self._parked[fd] = (h, task, fds)
        except BaseException:
            self._unpark(fds)
            raise
        self._work.set()

        def abort(_: object) -> Abort:
            self._unpark(fds)
            return Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


async def _serve_through_trio(pairs: tuple[tuple[DirectStream, Handler], ...]) -> None:
    """:meth:`HotLoop.serve` with trio's own waits (the loop is not running)."""
    if len(pairs) == 1:
        stream, handler = pairs[0]
        while True:
            await stream.wait_readable()
            if not handler():
                return

    async def wait(stream: DirectStream, handler: Handler, ready: list[Handler],
                   scope: trio.CancelScope) -> None:  # fmt: skip
        await stream.wait_readable()
        ready.append(handler)
        scope.cancel()

    while True:
        ready: list[Handler] = []
        async with trio.open_nursery() as nursery:
            for stream, handler in pairs:
                nursery.start_soon(wait, stream, handler, ready, nursery.cancel_scope)
        if not ready[0]():
            return
