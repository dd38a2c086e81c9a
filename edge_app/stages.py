"""A small stage pipeline: a producer and transforms, each on a thread of its own, joined by bounded queues.

The caller takes the last stage's items, in the order they were produced, on its own thread (the app's
main thread, which keeps the window, the outputs and Ctrl-C). Each stage handles one item at a time, so
while one frame is in inference the next one is captured and preprocessed and the previous one drawn:
OpenCV and LiteRT release the GIL while they work, so the stages really overlap.

An exception in a stage travels down the queues behind the items made before it and is raised, as it
is, where the caller takes the next item: the caller sees every item before the failure, then the same
error the stage raised. Leaving the ``with`` block stops every stage and joins its thread.
"""

import queue
import threading
from typing import NamedTuple

POLL_S = 0.05  # how often a stage waiting on a queue looks whether the pipeline is stopping
_END = object()  # the producer has no more items
_STOPPED = object()  # what a wait returns once the pipeline is stopping


class _Failed(NamedTuple):
    """A stage's exception, carried down to the caller."""

    error: BaseException


class StagePipeline:
    """``produce()`` on one thread (``None``: no more items), then each of ``transforms`` (item -> item) on
    a thread of its own; iterate to get the last stage's items in production order.

    ``depth``: items each queue holds. The producer makes an item only once the next stage has taken
    the one before (and there is room): a file's frame is read just in time, not left to age in a
    queue. ``latest_only`` (a live camera, which delivers frames at its own pace whether read or not):
    the producer reads on, and the oldest item waiting in the full first queue makes way for the new
    one; ``dropped`` counts them. Otherwise nothing is dropped.
    """

    def __init__(self, produce, *transforms, depth=1, latest_only=False, name="stage"):
        self.latest_only, self.dropped = latest_only, 0
        self._stopping = threading.Event()
        self._queues = [queue.Queue(depth) for _ in range(len(transforms) + 1)]
        self._room = threading.Semaphore(depth)  # places in the first queue not yet taken by the next stage
        self._threads = [threading.Thread(target=self._produce, args=(produce,), name=f"{name} 0", daemon=True)]
        for i, transform in enumerate(transforms):
            work = (transform, self._queues[i], self._queues[i + 1])
            thread = threading.Thread(target=self._transform, args=work, name=f"{name} {i + 1}", daemon=True)
            self._threads.append(thread)

    def __enter__(self):
        try:
            for thread in self._threads:
                thread.start()
        except BaseException:  # Ctrl-C among the starts: the ones started are stopped again
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stop every stage and wait for its thread (a stage busy with an item finishes that item first).

        A Ctrl-C (or SIGTERM) while waiting does not leave a thread running on a source or a model about to
        be closed: the wait goes on, and the interruption is raised once every thread has ended. A thread
        that had not started yet finds the pipeline stopping and ends at once.
        """
        self._stopping.set()
        interrupted = None
        for thread in self._threads:
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt as error:
                    interrupted = error
        if interrupted is not None:
            raise interrupted

    def __iter__(self):
        last, worker = self._queues[-1], self._threads[-1]
        while True:
            try:
                item = last.get(timeout=POLL_S)
            except queue.Empty:
                if worker.is_alive() or not last.empty():
                    continue
                return  # the last stage was stopped from outside: nothing more will come
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    # ---------------------------------------------------------------- on the stages' threads

    def _produce(self, produce):
        outbox = self._queues[0]
        try:
            while self._ready():
                item = produce()
                if item is None:
                    break
                if self.latest_only:
                    self._put_latest(outbox, item)
                else:
                    self._put(outbox, item)
        except BaseException as error:  # noqa: BLE001 - carried to the caller and raised there
            self._put(outbox, _Failed(error))
            return
        self._put(outbox, _END)

    def _transform(self, transform, inbox, outbox):
        while (item := self._get(inbox)) is not _STOPPED:
            if inbox is self._queues[0] and not self.latest_only:
                self._room.release()
            if item is not _END and not isinstance(item, _Failed):
                try:
                    item = transform(item)
                except BaseException as error:  # noqa: BLE001 - carried to the caller and raised there
                    item = _Failed(error)
            if not self._put(outbox, item) or item is _END or isinstance(item, _Failed):
                return

    def _ready(self):
        """Wait until the producer may make its next item (at once when ``latest_only``); False once stopping."""
        while not self._stopping.is_set():
            if self.latest_only:
                return True
            if self._room.acquire(timeout=POLL_S):
                return True
        return False

    def _get(self, inbox):
        while not self._stopping.is_set():
            try:
                return inbox.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _STOPPED

    def _put(self, outbox, item):
        """Put ``item`` once there is room; False if the pipeline stopped first."""
        while not self._stopping.is_set():
            try:
                outbox.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _put_latest(self, outbox, item):
        """Put ``item`` now, dropping the oldest waiting item if the queue is full."""
        while True:
            try:
                outbox.put_nowait(item)
                return
            except queue.Full:
                try:
                    outbox.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
