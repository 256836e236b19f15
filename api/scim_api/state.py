"""What one API process holds: settings, the Kubernetes client and the watch-fed directory."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes_asyncio import client

from scim_core import constants as c
from scim_core.informer import Informer

from .config import ApiSettings
from .directory import Directory
from .ratelimit import RateLimiter


@dataclass
class ApiState:
    settings: ApiSettings
    directory: Directory = field(default_factory=Directory)
    api: client.ApiClient | None = None
    informers: list[Informer] = field(default_factory=list)
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate_per_second, self.settings.rate_burst)

    def ready(self) -> bool:
        return bool(self.informers) and all(i.synced.is_set() for i in self.informers)

    async def start(self, api: client.ApiClient) -> None:
        self.api = api
        for plural in (c.WORKSPACE_PLURAL, c.GROUP_PLURAL, c.USER_PLURAL):
            informer = Informer(api, plural, self.directory, on_ready=lambda: None)
            informer.start()
            self.informers.append(informer)

    async def stop(self) -> None:
        for informer in self.informers:
            await informer.stop()
        if self.api is not None:
            await self.api.close()
