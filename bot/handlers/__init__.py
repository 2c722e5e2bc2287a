"""Routers of the resident bot, one per module, built fresh for each dispatcher."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    """Resident flows in the order they are tried; the catch-all `fallback` router last."""
    from bot.handlers import categories, fallback, feedback, menu, mydata, questions

    return [
        menu.create_router(),
        mydata.create_router(),
        questions.create_router(),
        categories.create_router(),
        feedback.create_router(),
        fallback.create_router(),
    ]


def get_error_router() -> Router:
    from bot.handlers import errors

    return errors.create_router()
