"""Smartphone classes: classes, registrations, waitlist and reminders (core, no Telegram/HTTP)."""
