"""Residents, question logs and feedback (the Telegram bot, issue 4).

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "residents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residents")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_residents_telegram_user_id")),
    )
    op.create_table(
        "question_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("faq_id", sa.String(64), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_for_staff", sa.Boolean(), nullable=False),
        sa.Column("staff_status", sa.String(16), nullable=False),
        sa.CheckConstraint(
            "channel IN ('telegram', 'demo')", name=op.f("ck_question_logs_channel")
        ),
        sa.CheckConstraint(
            "outcome IN ('answered', 'suggested', 'fallback')",
            name=op.f("ck_question_logs_outcome"),
        ),
        sa.CheckConstraint(
            "staff_status IN ('open', 'dismissed', 'converted')",
            name=op.f("ck_question_logs_staff_status"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_question_logs_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_question_logs")),
    )
    op.create_index(op.f("ix_question_logs_resident_id"), "question_logs", ["resident_id"])
    op.create_index(op.f("ix_question_logs_created_at"), "question_logs", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("question_log_id", sa.Integer(), nullable=True),
        sa.Column("faq_id", sa.String(64), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("vote_key", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_feedback_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_log_id"],
            ["question_logs.id"],
            name=op.f("fk_feedback_question_log_id_question_logs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint(
            "resident_id", "vote_key", name=op.f("uq_feedback_resident_id_vote_key")
        ),
    )
    op.create_index(op.f("ix_feedback_resident_id"), "feedback", ["resident_id"])
    op.create_index(op.f("ix_feedback_question_log_id"), "feedback", ["question_log_id"])
    op.create_index(op.f("ix_feedback_faq_id"), "feedback", ["faq_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_faq_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_question_log_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_resident_id"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_question_logs_created_at"), table_name="question_logs")
    op.drop_index(op.f("ix_question_logs_resident_id"), table_name="question_logs")
    op.drop_table("question_logs")
    op.drop_table("residents")
