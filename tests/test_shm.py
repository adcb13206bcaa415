"""The daemon's pool of shared buffers: leased, reused, bounded, and given back."""

from __future__ import annotations

import numpy as np
import pytest
from colorize_backend.core.errors import ColorizeError
from colorize_backend.daemon import shm
from colorize_backend.daemon.shm import GRANULE, BufferPool, Region


@pytest.fixture
def pool(tmp_path):
    folder = shm.prepare_dir(tmp_path / "buffers")
    pool = BufferPool(folder, max_bytes=4 * GRANULE)
    yield pool
    pool.close()


def test_a_released_buffer_is_leased_again(pool):
    first = pool.lease(1000)
    assert first.size == GRANULE and (pool.folder / first.name).stat().st_mode & 0o777 == 0o600
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
    for buffer in leased:
        pool.release(buffer.name)
    pool._drop_idle(float("inf"), 0.0)
    assert not list(pool.folder.glob("colorize-*.buf"))


def test_a_shared_folder_of_someone_else_is_not_used(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert shm.prepare_dir(folder) is None
