"""Shared infrastructure for madoguchi: settings, database, migrations, command line."""

__version__ = "0.1.0"
