"""The batching worker: one thread owns the Predictor; concurrent requests share its batches.

Requests put images on one queue (`submit`, from any thread) and get a Future per image. The
worker takes the oldest image, then keeps taking images of that same size until it has
`max_batch` of them or `max_wait` seconds have passed since it took the first, and predicts
them in one call (one forward pass: the predictor's batch_size is at least max_batch). An
image of another size met meanwhile waits, in arrival order, for the next batch, so a mixed
stream never starves one size. Each image's result is (probs (H, W, C), mask (H, W), info),
info = dict(batch=n, queue_s=..., predict_s=...), exactly what predict_each gives it alone
or batched: the graph's ops are per image.

Bounded: at most `capacity` images are waiting or being predicted; `submit` of more raises
QueueFull (the server's 503) and takes none of them, so a request is queued whole or not at
all. A Future cancelled before its batch starts (the request timed out: 504) is skipped.
"""

import collections
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

_POLL_S = 0.1  # how often an idle worker looks at the stop flag


class QueueFull(Exception):
    """More images than the queue has room for; the message says how many are waiting."""


class _Item:
    __slots__ = ("image", "future", "queued_at")

    def __init__(self, image):
        self.image = image
        self.future = Future()
        self.queued_at = time.monotonic()


class Batcher:
    """Batches images of one size for `predictor.predict_each`; start(), submit(), stop().

    on_batch(n): called after each prediction with its batch size (the metrics' histogram).
    """

    def __init__(self, predictor, max_batch, max_wait_s, capacity, threshold=None, on_batch=None):
        self.predictor = predictor
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.capacity = int(capacity)
        self.threshold = threshold
        self.on_batch = on_batch or (lambda n: None)
        self._queue = queue.SimpleQueue()
        self._held = collections.deque()  # taken from the queue, of another size than the batch
        self._lock = threading.Lock()
        self._depth = 0  # images submitted and not yet answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="predictor", daemon=True)

    @property
    def depth(self):
        """Images waiting or being predicted now."""
        return self._depth

    def start(self):
        self._thread.start()
        return self

    def submit(self, images):
        """Queue images (each uint8 (H, W, 3)) -> their Futures, in order; QueueFull when there
        is no room for all of them, RuntimeError after stop()."""
        if self._stop.is_set():
            raise RuntimeError("the batcher is stopped")
        with self._lock:
            if self._depth + len(images) > self.capacity:
                raise QueueFull(f"{self._depth} images are queued (--queue {self.capacity})")
            self._depth += len(images)
        items = [_Item(image) for image in images]
        for item in items:
            self._queue.put(item)
        return [item.future for item in items]

    def stop(self, timeout=None):
        """Finish every image already queued, then end the worker thread."""
        self._stop.set()
        self._thread.join(timeout)

    def _take(self, timeout):
        """The next item: a held one first (arrival order), else from the queue; None if none
        came within timeout."""
        if self._held:
            return self._held.popleft()
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _gather(self, first):
        """first plus queued images of its size: up to max_batch, within max_wait of now."""
        batch, shape = [first], first.image.shape
        for item in list(self._held):  # held images of this size go first: they came first
            if len(batch) == self.max_batch:
                break
            if item.image.shape == shape:
                self._held.remove(item)
                batch.append(item)
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            (batch if item.image.shape == shape else self._held).append(item)
        return batch

    def _run(self):
        while True:
            first = self._take(_POLL_S)
            if first is None:
                if self._stop.is_set() and self._queue.empty() and not self._held:
                    return
                continue
            taken = self._gather(first)
            # A cancelled Future's request was answered 504 already: it is dropped unpredicted.
            self._predict([i for i in taken if i.future.set_running_or_notify_cancel()])
            with self._lock:
                self._depth -= len(taken)

    def _predict(self, batch):
        if not batch:
            return
        start = time.monotonic()
        try:
            results = self.predictor.predict_each([i.image for i in batch], self.threshold)
        except Exception as e:  # every waiting request learns of it; the worker goes on
            for item in batch:
                item.future.set_exception(e)
            return
        seconds = time.monotonic() - start
        self.on_batch(len(batch))
        for item, (probs, mask) in zip(batch, results, strict=True):
            info = dict(batch=len(batch), queue_s=start - item.queued_at, predict_s=seconds)
            item.future.set_result((np.asarray(probs), np.asarray(mask), info))
