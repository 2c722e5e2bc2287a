"""Smartphone classes: classes, registrations and notifications (issue 5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smartphone_classes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("what_to_bring", sa.Text(), nullable=False),
        sa.Column("venue", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("confirmed_seats", sa.Integer(), nullable=False),
        sa.Column("max_seats_per_registration", sa.Integer(), nullable=False),
        sa.Column("waitlist_enabled", sa.Boolean(), nullable=False),
        sa.Column("registration_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'changed', 'cancelled')",
            name=op.f("ck_smartphone_classes_status"),
        ),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_smartphone_classes_capacity")),
        sa.CheckConstraint(
            "confirmed_seats >= 0 AND confirmed_seats <= capacity",
            name=op.f("ck_smartphone_classes_seats"),
        ),
        sa.CheckConstraint(
            "ends_at > starts_at", name=op.f("ck_smartphone_classes_ends_after_start")
        ),
        sa.CheckConstraint(
            "max_seats_per_registration >= 1", name=op.f("ck_smartphone_classes_max_seats")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smartphone_classes")),
    )
    op.create_index(
        op.f("ix_smartphone_classes_starts_at"), "smartphone_classes", ["starts_at"], unique=False
    )
    op.create_table(
        "class_registrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=20), nullable=True),
        sa.Column("attended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('confirmed', 'waitlisted', 'cancelled', 'attended')",
            name=op.f("ck_class_registrations_status"),
        ),
        sa.CheckConstraint("seats >= 1", name=op.f("ck_class_registrations_seats")),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["smartphone_classes.id"],
            name=op.f("fk_class_registrations_class_id_smartphone_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_class_registrations_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_registrations")),
    )
    op.create_index(
        "ix_class_registrations_class_id_status",
        "class_registrations",
        ["class_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_class_registrations_resident_id"),
        "class_registrations",
        ["resident_id"],
        unique=False,
    )
    op.create_index(
        "uq_class_registrations_active_resident",
        "class_registrations",
        ["class_id", "resident_id"],
        unique=True,
        sqlite_where=sa.text("status IN ('confirmed', 'waitlisted')"),
        postgresql_where=sa.text("status IN ('confirmed', 'waitlisted')"),
    )
    op.create_table(
        "class_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'sending', 'sent', 'skipped', 'unknown', 'failed')",
            name=op.f("ck_class_notifications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["class_registrations.id"],
            name=op.f("fk_class_notifications_registration_id_class_registrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_notifications")),
        sa.UniqueConstraint(
            "registration_id",
            "kind",
            "schedule_version",
            name="uq_class_notifications_registration_id_kind_version",
        ),
    )
    op.create_index(
        op.f("ix_class_notifications_registration_id"),
        "class_notifications",
        ["registration_id"],
        unique=False,
    )
    op.create_index(
        "ix_class_notifications_status_due_at",
        "class_notifications",
        ["status", "due_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("class_notifications")
    op.drop_table("class_registrations")
    op.drop_table("smartphone_classes")
