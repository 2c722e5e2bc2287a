"""Where Alembic (and tests) find every ORM model: import each package's models here."""

from __future__ import annotations


def import_all_models() -> None:
    import admin.models  # noqa: F401
    import classes.models  # noqa: F401
    import faq.inquiry_models  # noqa: F401
    import faq.models  # noqa: F401
    import madoguchi.meta  # noqa: F401
    import madoguchi.residents  # noqa: F401
