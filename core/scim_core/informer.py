"""A watch-fed cache of one resource kind across all namespaces (client-go's informer, small).

List once (in pages of ``LIST_PAGE`` objects), then watch from that resourceVersion. A
watch that breaks (the API server restarted, the connection dropped) is re-opened from the
last resourceVersion seen, retried every ``RETRY_CAP`` seconds at most, so an API server that
answers again is heard within a second; only ``410 Gone`` (that resourceVersion has left the
server's window) makes it list again, once. Every event
is handed to a sink, so reads never need a round trip, and ``synced`` tells exactly when the
first full list has landed (nothing is decided on half a picture). Used by the API's
directory and the operator's cluster cache.

``health`` says how long the informer has gone without hearing from the API server. A quiet
but healthy watch still proves itself: it is asked to end after ``watch_timeout`` seconds
(the server closes it cleanly and it is re-opened at once), so silence longer than that
means the connection is broken or half-open (a network partition need not reset anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson
from kubernetes_asyncio import client

from scim_core import constants as c

from . import heap
from .listing import Collected, Listing
from .members import Member, MemberKey, shared_members, unpack_members

log = logging.getLogger(__name__)


#: Objects per list request: bounded memory per response, the event loop never held long.
LIST_PAGE = 1000
#: Headers of a list request: the page uncompressed.
PLAIN = {"Accept-Encoding": "identity"}
#: Objects of a page cached between two yields to the event loop (about 5 ms of work).
SLIM_CHUNK = 200
#: Retry delays after a failed list or watch: RETRY_BASE doubling up to RETRY_CAP seconds.
RETRY_BASE = 0.1
RETRY_CAP = 1.0


def retry_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures (0 = the first)."""
    return float(min(RETRY_BASE * 2.0 ** min(failures, 16), RETRY_CAP))


def _interned_conditions(status: Any) -> None:
    """Intern the strings of ``status.conditions`` (types, reasons, messages and times repeat
    across thousands of objects); one level only, so it stays cheap at list time."""
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for condition in conditions if isinstance(conditions, list) else ():
        if isinstance(condition, dict):
            for key, value in condition.items():
                if isinstance(value, str):
                    condition[key] = sys.intern(value)


#: How many ``gc_paused`` sections are open (one per informer listing at the moment).
_pauses = 0
#: Whether the collector was enabled when the first of them opened.
_was_enabled = True


@contextlib.contextmanager
def gc_paused(release: Callable[[], object] = heap.release) -> Iterator[None]:
    """No automatic cyclic garbage collection inside, while any such section is open (they
    nest, and may span ``await``: the informers list concurrently on one thread). Decoding and
    caching a list allocates hundreds of thousands of objects that all live on, and each time
    a generation fills the collector walks them again: a fifth to a half of the Python time of
    listing 20,000 groups, for no garbage (JSON has no cycles).

    Instead each page ends with a collection of the young generations (``collect_young``):
    what was allocated since the page before, this page's objects and whatever requests left
    meanwhile, so each cached object is walked once, while the next page is on its way. When
    the last section closes, the young generations are collected once more, then what is
    alive is frozen (``gc.freeze``: moved out of the collector's generations at no cost;
    reference counting still frees it) and the collector is back as it was: it never walks the
    cache again (a full pass over a million cached objects stops every request for a fraction
    of a second). That last collection used to be a full one, walking the whole cache with
    kube-apiserver idle: 0.6 to 0.9 s at 100,000 groups, on the API's way to ready. The price
    of either: a reference cycle among objects alive at the end of a page that becomes garbage
    later is never collected. Measured: the API's four informers listing 5,000 groups + 5,000
    users at once froze 30,459 objects, and a full collection of them all afterwards found none
    unreachable (none after a relist either); lists are rare (start, then only after a
    ``410 Gone``).

    Last, the C heap's free pages go back to the system (``release``, ``heap.release``):
    glibc keeps freed memory below the top of its heap resident, and a list frees a lot
    (page bodies, dropped fields; docs/operator.md, "Memory")."""
    global _pauses, _was_enabled
    if _pauses == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            gc.collect(1)
            gc.freeze()
            if _was_enabled:
                gc.enable()
            release()


def collect_young() -> None:
    """Inside ``gc_paused``, at the end of a page: the young generations collected (see
    there); their survivors move to the oldest, which nothing walks until the freeze."""
    if _pauses:
        gc.collect(1)


class Slim:
    """What a cache keeps of an object: no ``managedFields`` (read by no one here, and twice
    the size of the rest: 10 KB of a 15 KB group), and each distinct member entry once (a
    user in ten groups is one ``{"value": …}`` dict, not ten: 1,000,000 memberships cost
    what 100,000 users do), repeated strings once. Cached objects are therefore read-only:
    copy before changing.

    ``conditions``: intern the status's conditions' strings; off where a transform takes the
    status over (packs it to bytes or drops it), where it was 2 s of the API's CPU for nothing
    while listing 100,000 groups + 100,000 users (py-spy)."""

    def __init__(self, conditions: bool = True) -> None:
        self._members: dict[MemberKey, Member] = {}
        self._conditions = conditions

    def __call__(self, obj: dict[str, Any]) -> dict[str, Any]:
        for key in ("apiVersion", "kind"):
            if isinstance(obj.get(key), str):
                obj[key] = sys.intern(obj[key])
        metadata = obj.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop("managedFields", None)
            for key in ("namespace", "creationTimestamp"):
                if isinstance(metadata.get(key), str):
                    metadata[key] = sys.intern(metadata[key])
        if self._conditions:
            _interned_conditions(obj.get("status"))
        spec = obj.get("spec")
        if isinstance(spec, dict):
            packed = spec.pop("packedMembers", None)
            if isinstance(members := spec.get("members"), list):
                spec["members"] = shared_members(members, self._members)
            if isinstance(packed, str):  # a packed shard (members.py): decoded into shared members
                spec["members"] = list(spec.get("members") or []) + unpack_members(packed, self._members)
        return obj


class Sink(Protocol):
    def replace_all(self, plural: str, objects: list[dict[str, Any]]) -> None: ...
    def upsert(self, plural: str, obj: dict[str, Any]) -> None: ...
    def delete(self, plural: str, obj: dict[str, Any]) -> None: ...


def _custom_path(plural: str) -> str:
    return f"/apis/{c.GROUP}/{c.VERSION}/{plural}"


class WatchHealth:
    """When an informer last heard from the API server (a list, a watch opened, an event,
    a bookmark, a watch the server ended cleanly): the basis for readiness."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None
        #: when a watch last failed or expired (None: never), and since when one is open again
        self._lost: float | None = None
        self._open_since: float | None = None

    def heard(self) -> None:
        self._last = self._clock()

    def opened(self) -> None:
        """A watch is open (the server answered 200)."""
        if self._open_since is None:
            self._open_since = self._clock()

    def lost(self) -> None:
        """The watch failed or expired: changes may go unheard until one is open again."""
        self._lost = self._clock()
        self._open_since = None

    def unwatched(self, grace: float) -> bool:
        """Has a watch been lost and not been open again for ``grace`` seconds? (The API then
        names its writes for the operator: ``scim_core.write_notes``.)"""
        if self._lost is None:
            return False
        return self._open_since is None or self._clock() - self._open_since < grace

    def silent_for(self) -> float:
        """Seconds since the API server was last heard from; infinite before the first time."""
        return math.inf if self._last is None else self._clock() - self._last


class Informer:
    """Keeps ``sink`` in step with every object of one kind in the cluster.

    ``plural`` names the kind to the sink; ``path`` is its cluster-wide list URL
    (default: our API group's ``plural``), ``label_selector`` narrows it; an event for which
    ``held(plural, obj)`` is true is skipped before it is decoded. Each watch request
    asks the server to end it after ``watch_timeout`` seconds (see ``health``). ``transform``
    runs on each object after ``Slim``, as it is decoded (each list item, each watch event):
    what this cache keeps of it beyond ``Slim`` (``scim_core.cached_status``), applied before
    the next item is decoded, so a list of 100,000 never holds what is dropped all at once.

    ``kept(plural, obj)`` is the sink's copy of ``obj`` (same kind, namespace and name), if it
    keeps one. A relist (after ``410 Gone``) hands the sink that copy instead of the fresh
    decode when both are at the same resourceVersion, so the list never holds a second copy of
    what did not change: at 100,000 groups the relists after an API-server restart had grown
    the operator by 130 MB (docs/operator.md, "Memory").

    ``listing(plural)`` receives each list as it arrives (``scim_core.listing``); by default
    the sink's ``replace_all`` gets it whole once complete."""

    def __init__(
        self,
        api: client.ApiClient,
        plural: str,
        sink: Sink,
        on_ready: Callable[[], None] = lambda: None,
        path: str | None = None,
        label_selector: str | None = None,
        watch_timeout: int = 290,
        held: Callable[[str, dict[str, Any]], bool] = lambda _plural, _obj: False,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        kept: Callable[[str, dict[str, Any]], dict[str, Any] | None] = lambda _plural, _obj: None,
        listing: Callable[[str], Listing] | None = None,
    ) -> None:
        self._api = api
        self._path = path or _custom_path(plural)
        self._selector = label_selector
        self._plural = plural
        self._sink = sink
        self._on_ready = on_ready
        #: the sink already holds this version of the object (the echo of its own write): the
        #: event is not decoded (a packed shard is 5,000 members, decoded on the event loop)
        self._held = held
        self._kept = kept
        self._listing: Callable[[str], Listing] = listing or (lambda plural: Collected(sink, plural))
        self._watch_timeout = max(1, watch_timeout)
        self.synced = asyncio.Event()
        self.health = WatchHealth()
        slim = Slim(conditions=transform is None)
        #: what is kept of each decoded object: ``Slim``, then the transform
        self._slim: Callable[[dict[str, Any]], dict[str, Any]] = (
            slim if transform is None else lambda obj: transform(slim(obj))
        )
        #: Complete lists done so far (the first, then one per ``410 Gone``).
        self.lists = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def plural(self) -> str:
        return self._plural

    def decode(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What this informer keeps of ``obj`` (``Slim``, then the transform), for an object
        read by other means than its list and watch (``scim_core.write_notes``)."""
        return self._slim(obj)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self._plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _get(self, request_timeout: float, headers: dict[str, str] | None = None, **query: Any) -> Any:
        params = [(k, v) for k, v in query.items() if v is not None]
        if self._selector:
            params.append(("labelSelector", self._selector))
        response = await self._api.call_api(  # header_params a copy: call_api adds to it
            self._path, "GET", query_params=params, header_params=dict(headers or {}),
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=request_timeout,
        )  # fmt: skip
        return response[0] if isinstance(response, tuple) else response

    async def _page(self, token: str | None) -> dict[str, Any]:
        """One page of the list, decoded (``_Gone`` when the continue token has expired)."""
        # not gzipped: the API server's compression and our decompression of each page cost
        # more CPU than the bytes cost a cluster's network (a tenth of listing 20,000 groups)
        resp = await self._get(330, PLAIN, limit=str(LIST_PAGE), **{"continue": token})
        try:
            body = await resp.read()
        finally:
            resp.release()
        result: dict[str, Any] = orjson.loads(body)
        if "items" not in result:
            if result.get("code") == 410:
                raise _Gone()  # the continue token expired: start over
            raise RuntimeError(f"list {self._path}: {result.get('message', result)}")
        return result

    async def _list(self) -> str:
        """Every object, page by page, into the sink's listing; the list's resourceVersion.

        The next page is asked for before this one is slimmed, so the API server encodes it
        while this process works on this one (two processes, two cores: the start of an API
        over 100,000 groups took the sum of both); a page is slimmed and handed on in chunks,
        so requests (``/readyz``, other informers' pages) are served in between, and each
        page's young objects are collected once it is done (``collect_young``)."""
        with gc_paused():
            return await self._list_paused()

    async def _list_paused(self) -> str:
        listing = self._listing(self._plural)
        count = 0
        started = time.monotonic()
        pending = asyncio.ensure_future(self._page(None))
        try:
            while True:
                result = await pending
                self.health.heard()
                token = result["metadata"].get("continue") or None
                if token is not None:
                    pending = asyncio.ensure_future(self._page(token))
                kind = result.get("kind", "").removesuffix("List")
                listed = result.get("items") or []
                for start in range(0, len(listed), SLIM_CHUNK):
                    await asyncio.sleep(0)  # the next page's request goes out; others are served
                    items: list[dict[str, Any]] = []
                    for item in listed[start : start + SLIM_CHUNK]:
                        unchanged = self._unchanged(item) if self.lists else None
                        if unchanged is not None:
                            items.append(unchanged)
                            continue
                        item.setdefault("kind", kind)  # list items carry no kind; the watch's objects do
                        items.append(self._slim(item))
                    listing.add(items)
                    count += len(items)
                del listed, result["items"]  # freed now: not walked by the collection below
                collect_young()
                if token is None:
                    break
        finally:
            if not pending.done():  # a failure or a cancel half-way: no request left behind
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
        self.lists += 1
        listing.done()
        log.info("informer %s: listed %d objects in %.2fs", self._plural, count, time.monotonic() - started)
        rv: str = result["metadata"]["resourceVersion"]
        return rv

    def _unchanged(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """The sink's copy of a listed object when it is at the listed resourceVersion (every
        write of an object changes it, so that copy is what decoding the item would give)."""
        cached = self._kept(self._plural, item)
        if cached is None:
            return None
        version = (item.get("metadata") or {}).get("resourceVersion")
        same = version is not None and (cached.get("metadata") or {}).get("resourceVersion") == version
        return cached if same else None

    async def _run(self) -> None:
        rv: str | None = None
        failures = 0
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                    if not self.synced.is_set():
                        self.synced.set()
                        self._on_ready()
                rv = await self._watch(rv)
                failures = 0
            except asyncio.CancelledError:
                raise
            except _Gone:  # logged: a list that keeps outliving the compaction must show
                log.info("informer %s: resourceVersion expired (410 Gone); listing again", self._plural)
                self.health.lost()
                rv = None
            except Exception as exc:  # the API server may be gone for a while: keep trying
                self.health.lost()
                delay = retry_delay(failures)
                failures += 1
                log.warning("informer %s: %s; retrying in %.1fs", self._plural, exc, delay)
                await asyncio.sleep(delay)

    async def _watch(self, rv: str) -> str:
        """Follow the watch from ``rv`` until it ends; return the last resourceVersion.

        Reads the raw stream (aiohttp's readline refuses lines over 128 KiB, and a large
        group's event is bigger than that)."""
        resp = await self._get(
            self._watch_timeout + 30,
            watch="true", resourceVersion=rv, allowWatchBookmarks="true",
            timeoutSeconds=str(self._watch_timeout),
        )  # fmt: skip
        if resp.status != 200:
            resp.release()
            if resp.status == 410:
                raise _Gone()
            raise RuntimeError(f"watch {self._path}: HTTP {resp.status}")
        self.health.heard()
        self.health.opened()
        buffer = b""
        try:
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1 :]
                    if line.strip():
                        rv = self._handle(orjson.loads(line), rv)
                        self.health.heard()
                        # buffered events are handed out without a pause: let the loop serve
                        # others (a probe, a request) between two shard events of 5,000 members
                        await asyncio.sleep(0)
        finally:
            resp.release()
        self.health.heard()  # the server ended the watch as asked: the connection was alive
        return rv

    def _handle(self, event: dict[str, Any], rv: str) -> str:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise RuntimeError(f"watch error: {obj}")
        new_rv: str = obj.get("metadata", {}).get("resourceVersion", rv)
        if kind == "BOOKMARK":
            return new_rv
        if kind in ("ADDED", "MODIFIED"):
            if not self._held(self._plural, obj):
                self._sink.upsert(self._plural, self._slim(obj))
        elif kind == "DELETED":
            self._sink.delete(self._plural, obj)
        return new_rv


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""
