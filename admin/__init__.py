"""Staff web admin: thin HTTP adapter over the core services."""
