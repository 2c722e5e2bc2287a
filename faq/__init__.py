"""FAQ store and matching engine (core, no Telegram/HTTP)."""
