"""Telegram adapter (aiogram 3): thin handlers over the core services."""
