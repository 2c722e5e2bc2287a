"""End-to-end helpers: a scripted resident talking to the real bot through the fake Bot API.

The bot is the production `BotRuntime` (factory-built Bot with aiogram's AiohttpSession and
the retry middleware, the dispatcher with every router and middleware) polling a
`FakeBotAPI` on 127.0.0.1 over real HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.fake_api import FakeBotAPI, SentMessage

TOWN = {
    "town_name": "みどり町",
    "counter_name": "みどり町役場 住民課",
    "counter_phone": "0555-12-3456",
    "counter_hours": "平日 8:30〜17:15",
    "counter_place": "役場 1階 2番窓口",
    "class_contact": "みどり町役場 情報政策係",
}
COUNTER_PHONE = TOWN["counter_phone"]
# A My Number question the engine answers directly with one entry.
LOST_QUESTION = "マイナンバーカードをなくしました"
LOST_ID = "mn-lost-stolen"
LOSS_HOTLINE = "0120-95-0178"  # in that entry's answer
UNKNOWN_QUESTION = "今日の天気は？"
# One word, several close entries: the engine offers 「もしかして」 choices.
VAGUE_QUESTION = "暗証番号"


@dataclass
class Resident:
    """One resident in a private chat with the bot; every step waits for the bot's replies."""

    api: FakeBotAPI
    user_id: int
    timeout: float = 10.0

    async def says(self, text: str, *, replies: int = 1) -> list[SentMessage]:
        self.api.send_text(self.user_id, text)
        return await self.api.wait_for_messages(self.user_id, replies, self.timeout)

    async def say(self, text: str) -> SentMessage:
        (reply,) = await self.says(text)
        return reply

    async def taps(
        self, message: SentMessage, label: str, *, replies: int = 1
    ) -> list[SentMessage]:
        """Tap the inline button labelled `label` under `message`; the callback is answered."""
        data = message.button(label).callback_data
        assert data is not None, f"{label!r} is a link, not a button"
        update_id = self.api.press_button(self.user_id, message.message_id, data)
        result = await self.api.wait_for_messages(self.user_id, replies, self.timeout)
        await self.api.wait_for_callback_answer(
            self.api.callback_query_id_of(update_id), self.timeout
        )
        return result

    async def tap(self, message: SentMessage, label: str) -> SentMessage:
        (reply,) = await self.taps(message, label)
        return reply

    def transcript(self) -> list[str]:
        return [m.text or "" for m in self.api.messages(self.user_id)]


def menu_of(message: SentMessage) -> list[str]:
    """The reply-keyboard labels a message sets (flattened); [] if it sets none."""
    return [label for row in message.keyboard or [] for label in row]
