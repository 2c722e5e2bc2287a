"""Filters checked on the event loop.

aiogram runs every non-async filter, its own magic filters (F.text …) included, in a worker
thread through asyncio.to_thread. A free-text question passes five or six of them on its way
to the question handler, so each update paid as many thread round trips, for checks that take
microseconds. `Magic` checks the same magic filter in the loop.
"""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from magic_filter import MagicFilter


class Magic(Filter):
    """`Magic(F.text.startswith("/"))` matches what `F.text.startswith("/")` matches."""

    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: Any) -> Any:
        return self.magic.resolve(event)

    def __str__(self) -> str:
        return f"Magic({self.magic!r})"
