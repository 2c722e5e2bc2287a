"""Deployment settings, read from the environment (or a `.env` file).

Every variable is documented in README.md. Town details have clearly marked sample defaults:
a deployment must set its own before residents see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from faq.thresholds import MatchThresholds

_THRESHOLDS = MatchThresholds()  # defaults of the FAQ outcome thresholds

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/madoguchi.sqlite3"
DEFAULT_WORD_VECTORS_DIR = "./var/word_vectors"

# Marked samples: shown to residents until staff configure the real values.
SAMPLE_MARK = "（サンプル・要設定）"


@dataclass(frozen=True, slots=True)
class TownInfo:
    """The town's own details that answers and fallbacks mention."""

    town_name: str
    counter_name: str
    counter_phone: str
    counter_hours: str
    counter_place: str
    class_contact: str

    def placeholders(self) -> dict[str, str]:
        """Values for the `{name}` placeholders that FAQ answers may contain."""
        return {
            "town_name": self.town_name,
            "counter_name": self.counter_name,
            "counter_phone": self.counter_phone,
            "counter_hours": self.counter_hours,
            "counter_place": self.counter_place,
            "class_contact": self.class_contact,
        }


class Settings(BaseSettings):
    """All configuration of one deployment."""

    model_config = SettingsConfigDict(
        env_prefix="MADOGUCHI_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("BOT_TOKEN", "MADOGUCHI_BOT_TOKEN")
    )
    telegram_api_base: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TELEGRAM_API_BASE", "MADOGUCHI_TELEGRAM_API_BASE"),
    )
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    timezone: str = "Asia/Tokyo"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"

    # Town details (placeholders in FAQ answers and the "talk to a person" message).
    town_name: str = f"〇〇町{SAMPLE_MARK}"
    counter_name: str = f"町役場 住民窓口{SAMPLE_MARK}"
    counter_phone: str = f"000-000-0000{SAMPLE_MARK}"
    counter_hours: str = f"平日 8:30〜17:15（土日祝・年末年始を除く）{SAMPLE_MARK}"
    counter_place: str = f"町役場 1階{SAMPLE_MARK}"
    class_contact: str = f"町役場 情報政策の担当{SAMPLE_MARK}"

    # FAQ engine outcome thresholds (scores are 0..1). Chosen from the development set:
    # see README "FAQ engine" and `madoguchi faq evaluate`.
    faq_answer_threshold: float = Field(default=_THRESHOLDS.answer, ge=0.0, le=1.0)
    faq_answer_margin: float = Field(default=_THRESHOLDS.margin, ge=0.0, le=1.0)
    faq_suggest_threshold: float = Field(default=_THRESHOLDS.suggest, ge=0.0, le=1.0)
    faq_max_candidates: int = Field(default=_THRESHOLDS.max_candidates, ge=1, le=20)
    # Extra synonym table (same format as faq/data/synonyms.tsv) that staff maintain.
    faq_synonyms_file: str | None = None
    # Folder of the word-vector table (`madoguchi faq vectors` builds it; `make` runs that).
    # Empty: no vectors. Without a table there the engine simply works without them.
    faq_word_vectors: str = DEFAULT_WORD_VECTORS_DIR
    # How often a running app looks for FAQ edits made elsewhere (CSV import, other instances).
    faq_refresh_seconds: float = Field(default=10.0, gt=0.0, le=3600.0)

    # Telegram webhook (issue 4). Unset webhook_url = long polling. The public base URL is
    # joined with webhook_path; Telegram sends webhook_secret in a header with every request.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/telegram/webhook"
    # Processes that handle the bot's updates. 1: this process does everything. More: this
    # process receives the updates and hands each resident's to one of that many worker
    # processes (bot/workers.py), for more updates per second on a machine with spare cores.
    bot_workers: int = Field(default=1, ge=1, le=32)

    # Smartphone classes (issue 5). Reminders: the day before at this local time ("" = off)
    # and this many hours before the start (0 = off). One scheduler per deployment: set
    # MADOGUCHI_SCHEDULER_ENABLED=false on every instance but one.
    reminder_day_before_time: str = "10:00"
    reminder_hours_before: float = Field(default=2.0, ge=0.0, le=72.0)
    scheduler_enabled: bool = True
    # How often the scheduler looks for due notifications, and the overall sending rate
    # (Telegram allows about 30 messages a second; stay below it).
    reminder_check_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    send_rate_per_second: float = Field(default=25.0, gt=0.0, le=30.0)

    # Staff admin (issue 6). Secure cookies: on by default when the public URL is https.
    admin_session_hours: float = Field(default=8.0, gt=0.0, le=24.0 * 30)
    admin_cookie_secure: bool | None = None
    # Signs the login form; set the same value on every instance behind one address.
    admin_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and (
            self.webhook_secret is None or not self.webhook_secret.get_secret_value()
        ):
            raise ValueError("MADOGUCHI_WEBHOOK_SECRET is required with MADOGUCHI_WEBHOOK_URL")
        if not self.webhook_path.startswith("/"):
            raise ValueError("MADOGUCHI_WEBHOOK_PATH must start with /")
        return self

    @field_validator("reminder_day_before_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        value = value.strip()
        if value:
            time.fromisoformat(value)  # raises for anything but HH:MM[:SS]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone name
        return value

    @cached_property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def town(self) -> TownInfo:
        return TownInfo(
            town_name=self.town_name,
            counter_name=self.counter_name,
            counter_phone=self.counter_phone,
            counter_hours=self.counter_hours,
            counter_place=self.counter_place,
            class_contact=self.class_contact,
        )

    @property
    def demo_mode(self) -> bool:
        return self.bot_token is None or not self.bot_token.get_secret_value()


def sqlite_file_of(url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
