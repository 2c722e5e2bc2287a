"""ORM tables of what residents asked and how they rated answers. Only faq.inquiries (and the
resident data functions of madoguchi.residents) touch them; everything else gets dataclasses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from madoguchi.db import Base


class QuestionLog(Base):
    """One question a resident typed, with its masked text and what the engine made of it."""

    __tablename__ = "question_logs"
    __table_args__ = (
        CheckConstraint("channel IN ('telegram', 'demo')", name="channel"),
        CheckConstraint("outcome IN ('answered', 'suggested', 'fallback')", name="outcome"),
        CheckConstraint("staff_status IN ('open', 'dismissed', 'converted')", name="staff_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)  # redacted (faq.redact) before it is stored
    outcome: Mapped[str] = mapped_column(String(16))
    faq_id: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(index=True)
    # The resident chose to pass the question on to staff.
    left_for_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # Admin inbox: open until staff dismiss it or turn it into an FAQ entry.
    staff_status: Mapped[str] = mapped_column(String(16), default="open")


class Feedback(Base):
    """A 👍 / 👎 on an answer. One vote per resident, question and entry: `vote_key` is
    "<question_log_id or ->:<faq_id>", unique per resident, so a double tap cannot count twice
    and a change of mind updates the vote."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("resident_id", "vote_key", name="uq_feedback_resident_id_vote_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    question_log_id: Mapped[int | None] = mapped_column(
        ForeignKey("question_logs.id", ondelete="SET NULL"), index=True
    )
    faq_id: Mapped[str] = mapped_column(String(64), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    vote_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
