"""A list received page by page, and where its objects go (``Informer(listing=…)``).

A sink that can build its state while the pages arrive takes them as they come (the API's
directory builds its group and user tables that way: at 100,000 groups the tables cost 2 s
of the API's CPU, which at the end of the list held the start while kube-apiserver was idle).
Any other sink gets the whole list at once, when it is complete (:class:`Collected`). Until
``done`` nothing of a listing is visible: a list that fails half-way changes nothing."""

from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class Listing(Protocol):
    def add(self, objects: list[Obj]) -> None:
        """The next objects of the list, in the list's order."""

    def done(self) -> None:
        """The list is complete: it replaces what the sink held of its kind."""


class Replacing(Protocol):
    def replace_all(self, plural: str, objects: list[Obj]) -> None: ...


class Collected:
    """A listing handed whole to ``sink.replace_all`` once it is complete."""

    def __init__(self, sink: Replacing, plural: str) -> None:
        self._sink = sink
        self._plural = plural
        self._objects: list[Obj] = []

    def add(self, objects: list[Obj]) -> None:
        self._objects.extend(objects)

    def done(self) -> None:
        self._sink.replace_all(self._plural, self._objects)
