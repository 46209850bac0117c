"""Read ahead: run an iterator on a thread so reading batch k + 1 overlaps work on batch k.

Parquet decoding releases the GIL, so the reader really runs beside the candidate. The queue
holds at most ``depth`` items (memory stays bounded); an exception in the reader is re-raised
in the consumer; a consumer that stops early tells the reader to stop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Final, TypeVar

T = TypeVar("T")
_DONE: Final = object()
PUT_WAIT_S: Final = 0.1


def prefetch(source: Iterator[T], depth: int, timings: dict[str, float] | None = None
             ) -> Iterator[T]:
    """Yield ``source``'s items, produced ``depth`` ahead on a daemon thread."""
    items: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            while True:
                started = time.perf_counter()
                try:
                    item = next(source)
                except StopIteration:
                    break
                if timings is not None:
                    timings["read"] = timings.get("read", 0.0) + time.perf_counter() - started
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    thread = threading.Thread(target=run, name="replay-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
