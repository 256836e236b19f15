"""Giving the C heap's free memory back: glibc's ``malloc_trim`` after a list and a pinned
mmap threshold where the C library has them, nothing (and no error) where it has not."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest

from scim_core import heap
from scim_core import informer as inf


def _trim(pad: int) -> int:
    return 1


class _Libc:
    def __init__(self, **symbols: Any) -> None:
        self.__dict__.update(symbols)


def _no_library(_name: str | None) -> object:
    raise OSError("no such library")


@pytest.mark.parametrize(
    ("load", "found"),
    [
        (lambda _name: _Libc(malloc_trim=_trim), True),  # glibc
        (lambda _name: _Libc(), False),  # musl, macOS: no malloc_trim
        (lambda _name: _Libc(malloc_trim=0), False),  # something else by that name
        (_no_library, False),  # the process's symbols cannot be opened
    ],
)
def test_a_c_function_is_found_only_where_the_c_library_has_it(load: Any, found: bool) -> None:
    assert (heap.libc_function("malloc_trim", load) is _trim) is found


@pytest.mark.parametrize(
    ("answer", "released"),
    [
        (1, True),  # pages went back
        (0, False),  # none were free
        (OSError("refused"), False),  # an error is not the caller's problem
    ],
)
def test_release_free_heap_trims_every_free_page_and_says_whether_any_went_back(
    answer: int | Exception, released: bool
) -> None:
    pads: list[int] = []

    def trim(pad: int) -> int:
        pads.append(pad)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert heap.release_free_heap(trim) is released
    assert pads == [0]  # pad 0: every whole free page, none kept at the top


def test_without_malloc_trim_nothing_is_released() -> None:
    assert heap.release_free_heap(None) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_this_process_releases_through_its_own_c_library() -> None:
    assert heap.libc_function("malloc_trim") is not None  # the image and CI run on glibc
    assert heap.libc_function("mallopt") is not None
    assert isinstance(heap.release(), bool)


@pytest.mark.parametrize(
    ("answer", "pinned"),
    [
        (1, True),  # glibc took it
        (0, False),  # refused (a threshold over its maximum)
        (OSError("refused"), False),
    ],
)
def test_the_mmap_threshold_is_pinned_through_mallopt(answer: int | Exception, pinned: bool) -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert heap.fix_mmap_threshold(mallopt) is pinned
    assert calls == [(-3, 128 * 1024)]  # M_MMAP_THRESHOLD in malloc.h; glibc's initial value
    assert heap.fix_mmap_threshold(None) is False  # no mallopt: nothing to do


def test_the_heap_is_released_once_when_the_last_list_ends() -> None:
    released: list[int] = []
    was = gc.isenabled()
    try:
        first = inf.gc_paused(release=lambda: released.append(1))
        second = inf.gc_paused(release=lambda: released.append(2))
        first.__enter__()
        second.__enter__()  # two informers list at once
        first.__exit__(None, None, None)
        assert released == []  # the other list still runs: its garbage is yet to come
        second.__exit__(None, None, None)
        assert released == [2]  # after the collection, once
        with pytest.raises(RuntimeError), inf.gc_paused(release=lambda: released.append(3)):
            raise RuntimeError("a failed list")
        assert released == [2, 3]  # what it allocated is freed too
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
