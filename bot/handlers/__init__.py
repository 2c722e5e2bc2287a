"""Routers of the resident bot, one per module, built fresh for each dispatcher."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    """Resident flows in the order they are tried; the catch-all `fallback` router last.

    `classes` comes first: while a class sign-up waits for a typed name or phone number, the
    text is its answer, not a question; a menu button or command ends the sign-up and goes on
    to `menu`.
    """
    from bot.handlers import categories, classes, fallback, feedback, menu, mydata, questions

    return [
        classes.create_router(),
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
