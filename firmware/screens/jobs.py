"""Card and host work off the kiosk loop: one worker thread, a message queue back to the loop.

The loop must never block (the screen keeps its clock, elapsed time and
Cancel), and the books are not shared between threads: every call into the
service runs here, one at a time, in the order asked.

    runner = JobRunner(wake=post_a_pygame_event, after=lambda: service.queue())
    job = runner.start(owner, call, label, abortable=True)
    ...
    for message in runner.poll():      # on the loop, after `wake` woke it
        JobDone(job, outcome, after)   # outcome: Done(value) or Failed(error)
        PinRequest(job, tries_left)    # the card wants a PIN: answer it or None

`wake` is called from the worker thread after each message; it must be
thread-safe (`pygame.event.post` is). `after` runs on the worker after every
job (the queue view the idle screen shows), so the loop reads a snapshot and
never the books. A job that raises is a `Failed(error)`, never a dead worker.
`stop()` refuses new jobs, lets the running one finish (card and host calls
are bounded by their own time-outs) and joins the thread.

A PIN request waits for the loop's answer (the cardholder types it) up to
`pin_timeout` seconds, or until the job is aborted; then the PIN is None,
which the kernel takes as "PIN entry bypassed".
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

__all__ = [
    "Done",
    "Failed",
    "Job",
    "JobDone",
    "JobRunner",
    "Message",
    "Outcome",
    "PinRequest",
]

T = TypeVar("T")
DEFAULT_PIN_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


@dataclass(frozen=True)
class Failed:
    error: BaseException


Outcome = Done[Any] | Failed


@dataclass(eq=False)
class Job:
    """One piece of work: who asked (`owner`, a screen), when it began, and its abort switch."""

    id: int
    owner: object
    label: str
    abortable: bool
    started: float
    aborted: threading.Event = field(default_factory=threading.Event)
    finished: bool = False

    def abort(self) -> None:
        self.aborted.set()

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


@dataclass(frozen=True)
class JobDone:
    job: Job
    outcome: Outcome
    after: Any


@dataclass(eq=False)
class PinRequest:
    """The card asks for a PIN; the loop answers with `answer(pin)` (None: bypass / cancelled)."""

    job: Job
    tries_left: int | None
    _answer: queue.Queue[str | None] = field(default_factory=lambda: queue.Queue(maxsize=1))

    def answer(self, pin: str | None) -> None:
        try:
            self._answer.put_nowait(pin)
        except queue.Full:
            pass

    def wait(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            if self.job.aborted.is_set():
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                return self._answer.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue


Message = JobDone | PinRequest


class JobRunner:
    def __init__(
        self,
        wake: Callable[[], None],
        after: Callable[[], Any] | None = None,
        *,
        pin_timeout: float = DEFAULT_PIN_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wake = wake
        self._after = after
        self._pin_timeout = pin_timeout
        self._clock = clock
        self._ids = itertools.count(1)
        self._work: queue.Queue[tuple[Job, Callable[[Job], Any]] | None] = queue.Queue()
        self._messages: queue.Queue[Message] = queue.Queue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kiosk-worker", daemon=True)
        self._thread.start()
        self.current: Job | None = None

    def start(
        self, owner: object, call: Callable[[Job], Any], label: str = "", *, abortable: bool = False
    ) -> Job:
        """Queue `call(job)`; its outcome comes back through `poll()` as a JobDone."""
        if self._stopping:
            raise RuntimeError("the kiosk is stopping: no new work")
        job = Job(next(self._ids), owner, label, abortable, self._clock())
        self._work.put((job, call))
        return job

    def busy(self) -> bool:
        return self.current is not None or not self._work.empty()

    def pin_source(self, job: Job) -> Callable[[object, int | None], str | None]:
        """A PIN source for the service's card payment, answered on the loop (see PinRequest)."""

        def ask(kind: object, tries_left: int | None) -> str | None:
            request = PinRequest(job, tries_left)
            self._post(request)
            return request.wait(self._pin_timeout)

        return ask

    def poll(self) -> list[Message]:
        """The messages waiting for the loop, oldest first (never blocks)."""
        messages: list[Message] = []
        while True:
            try:
                messages.append(self._messages.get_nowait())
            except queue.Empty:
                return messages

    def stop(self, timeout: float | None = None) -> bool:
        """No more jobs; wait for the running one. True when the worker has ended."""
        self._stopping = True
        if self.current is not None:
            self.current.abort()
        self._work.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _post(self, message: Message) -> None:
        self._messages.put(message)
        self._wake()

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            job, call = item
            self.current = job
            outcome: Outcome
            try:
                outcome = Done(call(job))
            except Exception as error:  # a job's failure is its outcome, shown on its screen
                outcome = Failed(error)
            after: Any = None
            if self._after is not None:
                try:
                    after = self._after()
                except Exception as error:
                    after = Failed(error)
            job.finished = True
            self._post(JobDone(job, outcome, after))
            self.current = None  # after the post: busy() stays true until the outcome is on its way
