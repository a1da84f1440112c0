"""Timed jobs on a few worker threads that start on demand and stop when idle.

No thread exists until the first job is scheduled, so building the app starts none; a worker
that has had nothing to do for ``linger`` seconds ends by itself, and ``close()`` ends them all.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class Dispatcher:
    """Runs each scheduled job once, no earlier than its due time.

    It shares the simulator's condition (and so its one lock): ``pending`` is read under it,
    and every change is announced with ``notify_all`` so that ``wait_idle`` can wake.
    """

    def __init__(self, condition: threading.Condition, workers: int = 4, linger: float = 1.0):
        self._cond = condition
        self._max_workers = workers
        self._linger = linger
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._threads: set[threading.Thread] = set()
        self._waiting = 0
        self._running = 0
        self._closed = False

    def schedule(self, delay: float, job: Job) -> None:
        """Run ``job`` after ``delay`` seconds. Call without holding the lock."""
        with self._cond:
            self.schedule_locked(delay, job)

    def schedule_locked(self, delay: float, job: Job) -> None:
        """As ``schedule``, for a caller that already holds the lock."""
        if self._closed:
            log.debug("simulator closed: a job was dropped")
            return
        heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), next(self._seq), job))
        if self._waiting < len(self._heap) and len(self._threads) < self._max_workers:
            thread = threading.Thread(target=self._work, name="simulator-worker", daemon=True)
            self._threads.add(thread)
            thread.start()
        self._cond.notify_all()

    def pending_locked(self) -> int:
        """Jobs scheduled or running."""
        return len(self._heap) + self._running

    def close(self, timeout: float) -> None:
        """Drop every scheduled job and wait (up to ``timeout``) for running ones to end."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _work(self) -> None:
        while (job := self._take()) is not None:
            try:
                job()
            except Exception:
                # A worker must survive any one job; the job's own code logs what it knows.
                log.exception("a simulator job failed")
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _take(self) -> Job | None:
        """The next due job, waiting for it; None when closed or idle for ``linger``."""
        with self._cond:
            idle_since = time.monotonic()
            while not self._closed:
                moment = time.monotonic()
                if self._heap and self._heap[0][0] <= moment:
                    job = heapq.heappop(self._heap)[2]
                    self._running += 1
                    return job
                if self._heap:
                    wait = self._heap[0][0] - moment
                    idle_since = moment
                else:
                    wait = self._linger - (moment - idle_since)
                    if wait <= 0:
                        break
                self._waiting += 1
                self._cond.wait(wait)
                self._waiting -= 1
            self._threads.discard(threading.current_thread())
            self._cond.notify_all()
            return None
