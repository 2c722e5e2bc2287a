"""A failed statement's error never reaches the log with the values it was given."""

from __future__ import annotations

import logging
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from madoguchi.cli import RedactingFormatter

PHONE = "09087654321"


async def test_errors_do_not_show_bound_values(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError) as failure:
            # No such class and no timestamps: a constraint refuses the row.
            await connection.execute(
                text(
                    "INSERT INTO class_registrations (class_id, resident_id, name, phone, seats,"
                    " status, created_at, updated_at) VALUES (:c, :r, :n, :p, 1, 'confirmed',"
                    " NULL, NULL)"
                ),
                {"c": 987654, "r": 987654, "n": "山田 花子", "p": PHONE},
            )
    # SQLAlchemy leaves the bound values out of its message ...
    assert "SQL parameters hidden due to hide_parameters=True" in str(failure.value)
    # ... but PostgreSQL quotes the refused row itself; the log formatter masks the number.
    try:
        raise failure.value
    except DBAPIError:
        record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    logged = RedactingFormatter("%(message)s").format(record)
    assert "IntegrityError" in logged
    assert PHONE not in logged
