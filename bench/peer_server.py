"""The peer ``make bench-api`` compares against: python-scim's scim2-server, in memory, as an
ASGI app under uvicorn (one worker), the same way the SCIM API is served.

Run by the peer's own virtualenv (``bench/peer.py`` makes it), not the project's: the peer
pins its own scim2-models. ``uvicorn --factory --app-dir bench peer_server:app``."""

from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.utils import load_default_provider


def app() -> ASGIApplication:
    return ASGIApplication(AsyncInMemoryStorage(), load_default_provider())
