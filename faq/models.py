"""ORM tables of the FAQ store. Only faq.store touches them; everything else gets faq.types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from madoguchi.db import Base


class FaqEntryRow(Base):
    """The current version of one FAQ entry."""

    __tablename__ = "faq_entries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    alternatives: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(100), index=True, default="")
    reference_url: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(100), default="")
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    staff_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
    # Set by the store on every change; the mapper adds `WHERE revision = :old` to each
    # UPDATE and DELETE, so a writer working from a stale copy fails instead of overwriting.
    revision: Mapped[int] = mapped_column(Integer)

    __mapper_args__: Any = {"version_id_col": revision, "version_id_generator": False}


class FaqRevisionRow(Base):
    """One kept version of an entry. No foreign key: the history outlives a deleted entry."""

    __tablename__ = "faq_revisions"
    __table_args__ = (
        UniqueConstraint("entry_id", "revision", name="uq_faq_revisions_entry_id_revision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))  # create / update / restore / delete
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)  # every FaqEntryData field
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))
