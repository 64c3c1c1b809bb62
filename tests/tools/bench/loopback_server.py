"""An asyncio HTTP stand-in for a box on loopback, served from its own thread, and shut down
whole afterwards (listener, open connections, loop) so no task or socket outlives the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


def serve_on_loopback(handler: Handler, backlog: int = 1024) -> Iterator[int]:
    """Yield the port `handler` answers on; a generator for a pytest fixture to `yield from`."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        asyncio.start_server(_closing(handler), "127.0.0.1", 0, backlog=backlog)
    )
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(_shut(server), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _closing(handler: Handler) -> Handler:
    """The handler, with its connection closed however it ends (cancelled at shut-down too)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def _shut(server: asyncio.Server) -> None:
    server.close()
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await server.wait_closed()
