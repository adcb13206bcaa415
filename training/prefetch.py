"""Prepare the next batches on a helper thread while the network trains on this one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator


def prefetch(iterable: Iterable, depth: int = 3) -> Iterator:
    """Yield the items of iterable, produced `depth` ahead on a daemon thread; errors pass on."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work():
        try:
            for item in iterable:
                q.put(item)
        except BaseException as error:  # re-raised in the consumer
            q.put(error)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
