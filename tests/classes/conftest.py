"""Fixtures of the classes tests: the default reminder policy and the `kit` (classkit.py).

Test modules here need unique basenames (tests/ has no __init__.py, and a package named
`tests.classes` would shadow the real `classes` package).
"""

from __future__ import annotations

import pytest
from classkit import TOKYO, ClassKit
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classes.notice_queue import ReminderPolicy


@pytest.fixture
def policy() -> ReminderPolicy:
    return ReminderPolicy(tz=TOKYO)


@pytest.fixture
def kit(session_factory: async_sessionmaker[AsyncSession], policy: ReminderPolicy) -> ClassKit:
    return ClassKit(factory=session_factory, policy=policy)
