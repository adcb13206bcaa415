"""The daemon's pool of shared buffers: leased, reused, bounded, and given back."""

from __future__ import annotations

import os

import numpy as np
import pytest
from colorize_backend.core.errors import ColorizeError
from colorize_backend.daemon import shm
from colorize_backend.daemon.shm import GRANULE, BufferPool, Region

pytestmark = pytest.mark.skipif(not shm.available(), reason="no sealed memory files here")


@pytest.fixture
def pool():
    pool = BufferPool(max_bytes=4 * GRANULE)
    yield pool
    pool.close()


def test_a_released_buffer_is_leased_again(pool):
    first = pool.lease(1000)
    assert first.size == GRANULE and os.stat(first.path).st_size == GRANULE
    pool.release(first.name)
    assert pool.lease(GRANULE).name == first.name
    assert pool.lease(10).name != first.name  # still leased: a new one


def test_views_need_a_lease_and_stay_inside_the_buffer(pool):
    buffer = pool.lease(64)
    view = pool.view(buffer.name, Region(0, 16), (4, 4, 1), np.dtype(np.uint8))
    view[:] = 7
    assert buffer.mapping[:16] == b"\x07" * 16
    with pytest.raises(ColorizeError, match="overrun"):
        pool.view(buffer.name, Region(GRANULE - 8, 16), (16,), np.dtype(np.uint8))
    pool.release(buffer.name)
    with pytest.raises(ColorizeError, match="not leased"):
        pool.view(buffer.name, Region(0, 16), (16,), np.dtype(np.uint8))


def test_the_pool_is_bounded_and_idle_buffers_go(pool):
    leased = [pool.lease(GRANULE) for _ in range(4)]
    with pytest.raises(ColorizeError) as full:
        pool.lease(1)
    assert full.value.code == "busy"
    paths = [buffer.path for buffer in leased]
    for buffer in leased:
        pool.release(buffer.name)
    pool._drop_idle(float("inf"), 0.0)
    assert not any(os.path.exists(path) for path in paths)  # closed: gone with the daemon


def test_a_client_cannot_resize_a_leased_buffer(pool):
    """A shrink under a running job would kill the daemon with SIGBUS: the seals forbid it."""
    buffer = pool.lease(64)
    descriptor = os.open(buffer.path, os.O_RDWR)
    try:
        for size in (0, buffer.size // 2, buffer.size * 2):
            with pytest.raises(PermissionError):
                os.ftruncate(descriptor, size)
        os.pwrite(descriptor, b"pixels", 0)  # writing, what a client does, works
    finally:
        os.close(descriptor)
    assert buffer.mapping[:6] == b"pixels" and os.stat(buffer.path).st_size == buffer.size
