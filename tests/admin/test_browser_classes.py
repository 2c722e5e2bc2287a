"""The staff admin in a real browser (Playwright + Debian's Chromium), next to the real bot.

One process runs what `madoguchi run` runs: the web server with the admin at /admin/, and the
production BotRuntime polling a fake Bot API on 127.0.0.1; a scripted resident talks to the
bot through that API while a staff member works in Chromium. Two of issue 6's bars:

(a) a question the bot cannot answer shows up in 未回答・👎; the staff member turns it into a
    new FAQ entry with one click and a short form; the bot then answers it;
(b) a class created in the admin is offered in the bot, a resident signs up there (the whole
    flow: class list, details, 申し込む, name, phone, seats, confirmation), and the class page
    and the print view of the roster show them.

Screenshots of the dashboard, the inbox, the class list, the class page and the print view go
to test-artifacts/ (look at them: they are the documented check of the pages' look).
`make browser` installs Chromium and the fonts; without Chromium these tests are skipped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from adminkit import fast_hasher
from aiohttp import web

from admin.accounts import LoginPolicy, create_staff
from admin.web import create_admin_app
from bot.fake_api import FakeBotAPI, SentMessage
from bot.runner import BotRuntime
from classes.service import list_classes, list_registrations
from classes.types import RegistrationStatus
from madoguchi.app import AppContext, open_app
from madoguchi.db import session_scope
from madoguchi.settings import Settings
from madoguchi.web import create_web_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOWN = {
    "town_name": "みどり町",
    "counter_name": "みどり町役場 住民課",
    "counter_phone": "0555-12-3456",
    "counter_hours": "平日 8:30〜17:15",
}
STAFF = "suzuki"
PASSWORD = "midori-town-staff-2026"
TIMEOUT = 15.0

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: run `make browser`"
    ),
]


@dataclass
class Town:
    context: AppContext
    api: FakeBotAPI
    base_url: str  # http://127.0.0.1:PORT


@pytest.fixture
async def town(isolated_settings_env: Path, tmp_path: Path) -> AsyncIterator[Town]:
    """The web server (admin included) and the bot on a fake Bot API, one event loop."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'browser.sqlite3'}",
        **TOWN,  # type: ignore[arg-type]
    )
    async with open_app(settings) as context:  # with the curated FAQ, as in production
        async with session_scope(context.session_factory) as db:
            await create_staff(
                db,
                STAFF,
                PASSWORD,
                display_name="鈴木 一郎",
                now=_now(),
                hasher=fast_hasher(),
            )
        api = FakeBotAPI(token="515151:ADMIN-BROWSER-TEST")
        await api.start()
        assert api.base_url is not None
        runtime = BotRuntime(context, token=api.token, api_base=api.base_url)
        await runtime.start_polling()
        admin = create_admin_app(
            context, hasher=fast_hasher(), policy=LoginPolicy(failure_delay=0.01)
        )
        runner = web.AppRunner(create_web_app(context, admin=admin), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield Town(context=context, api=api, base_url=f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()
            await runtime.stop()
            await api.stop()


def _now() -> Any:
    from classes.clock import SystemClock

    return SystemClock().now()


# --- the resident, through the fake Bot API ------------------------------------------------------


@dataclass
class Resident:
    api: FakeBotAPI
    user_id: int

    def last_id(self) -> int:
        messages = self.api.messages(self.user_id)
        return messages[-1].message_id if messages else 0

    async def wait_for(self, found: Callable[[SentMessage], bool], after: int) -> SentMessage:
        """The newest bot message after message id `after` for which `found` holds."""
        hit: list[SentMessage] = []

        def check() -> bool:
            for message in reversed(self.api.messages(self.user_id)):
                if message.message_id > after and found(message):
                    hit.append(message)
                    return True
            return False

        try:
            await self.api.wait_until(check, TIMEOUT)
        except TimeoutError:
            transcript = [m.text for m in self.api.messages(self.user_id, include_resident=True)]
            raise AssertionError(f"no such reply; the chat so far: {transcript}") from None
        return hit[0]

    async def says(self, text: str, found: Callable[[SentMessage], bool]) -> SentMessage:
        after = self.last_id()
        self.api.send_text(self.user_id, text)
        return await self.wait_for(found, after)

    async def taps(
        self, message: SentMessage, label: str, found: Callable[[SentMessage], bool]
    ) -> SentMessage:
        after = self.last_id()
        data = message.button(label).callback_data
        assert data is not None
        self.api.press_button(self.user_id, message.message_id, data)
        return await self.wait_for(found, after)


def has_text(part: str) -> Callable[[SentMessage], bool]:
    return lambda message: part in (message.text or "")


def has_button(label: str) -> Callable[[SentMessage], bool]:
    return lambda message: any(label in text for text in message.button_texts())


def has_keyboard(label: str) -> Callable[[SentMessage], bool]:
    return lambda message: any(label in row for row in message.keyboard or [])


# --- the staff member, in Chromium -----------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def staff_page(browser: Any, town: Town) -> Any:
    """A logged-in staff page, as on an office laptop at 150 % zoom (CSS width 960)."""
    from playwright.async_api import expect

    context = await browser.new_context(
        viewport={"width": 960, "height": 700}, device_scale_factor=1.5, locale="ja-JP"
    )
    page = await context.new_page()
    await page.goto(f"{town.base_url}/admin/")
    await expect(page.get_by_role("heading", name="職員ログイン")).to_be_visible()
    await page.get_by_label("ユーザー名").fill(STAFF)
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    await expect(page.get_by_role("heading", name="ダッシュボード")).to_be_visible()
    return page


async def fits_width(page: Any) -> bool:
    return bool(
        await page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


# --- (a) unanswered question → new FAQ entry → answered ---------------------------------------------

QUESTION = "町民プールは何時まで開いていますか"
ANSWER = "町民プールは午前9時から午後9時まで開いています（毎週月曜日はお休みです）。"


async def test_unanswered_question_becomes_an_entry_and_is_answered(
    town: Town, browser: Any
) -> None:
    from playwright.async_api import expect

    hanako = Resident(town.api, 6101)
    taro = Resident(town.api, 6102)
    fallback = await hanako.says(QUESTION, has_text("お答えできませんでした"))
    assert "0555-12-3456" in (fallback.text or "")
    await taro.says(f"{QUESTION}？", has_text("お答えできませんでした"))
    await taro.says("今日の天気は？", has_text("お答えできませんでした"))

    page = await staff_page(browser, town)
    await expect(page.get_by_text("対応待ちが")).to_be_visible()
    await page.screenshot(path=ARTIFACTS / "admin-dashboard.png", full_page=True)

    await (
        page.get_by_role("navigation", name="メニュー")
        .get_by_role("link", name="未回答・👎")
        .click()
    )
    await expect(page.get_by_role("heading", name="未回答・👎の質問")).to_be_visible()
    group = page.locator("section.inbox-group").filter(has_text=QUESTION)
    await expect(group).to_have_count(1)  # the two askings are one group
    await expect(group).to_contain_text("2件")
    await expect(page.locator("section.inbox-group")).to_have_count(2)
    assert await fits_width(page)
    await page.screenshot(path=ARTIFACTS / "admin-inbox.png", full_page=True)

    await group.get_by_role("link", name="新しいFAQを作る").click()
    await expect(page.get_by_role("heading", name="新しいFAQを作る")).to_be_visible()
    await expect(page.get_by_label("問い合わせ文")).to_have_value(f"{QUESTION}？")
    await page.get_by_label("ID").fill("pool-hours")
    await page.get_by_label("問い合わせ文").fill(QUESTION)
    await page.get_by_label("カテゴリ").fill("くらし")
    await page.get_by_label("応答文").fill(ANSWER)  # (also closes the category suggestions)
    await page.screenshot(path=ARTIFACTS / "admin-inbox-new-entry.png", full_page=True)
    await page.get_by_role("button", name="保存してFAQに追加").click()
    await expect(page.get_by_role("status")).to_contain_text("pool-hours")
    await expect(page.locator("section.inbox-group")).to_have_count(1)  # only the weather left

    # The bot answers at once, with the new text (no restart).
    answer = await hanako.says(QUESTION, has_text("午前9時"))
    assert ANSWER in (answer.text or "")

    # 対応不要 in one click.
    await page.locator("section.inbox-group").get_by_role("button", name="対応不要").click()
    await expect(page.get_by_text("対応を待っている質問はありません")).to_be_visible()
    await page.context.close()


# --- (b) class created in the admin → signed up in the bot → on the roster ----------------------------

VENUE = "中央公民館"
TITLE = "はじめてのスマホ教室（ブラウザ試験）"


async def test_class_created_in_admin_signed_up_in_bot_shows_on_roster(
    town: Town, browser: Any
) -> None:
    from playwright.async_api import expect

    page = await staff_page(browser, town)
    await (
        page.get_by_role("navigation", name="メニュー")
        .get_by_role("link", name="スマホ教室")
        .click()
    )
    await page.get_by_role("link", name="教室を作る").click()
    await page.get_by_label("教室名").fill(TITLE)
    await page.get_by_label("会場").fill(VENUE)
    await page.get_by_label("定員（席）").fill("8")
    await page.get_by_label("持ち物").fill("スマートフォン、老眼鏡")
    await page.get_by_role("button", name="保存する").click()
    await expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    async with town.context.session_factory() as db:
        (klass,) = await list_classes(db)

    # The resident signs up in the bot.
    hanako = Resident(town.api, 6201)
    listing = await hanako.says("スマホ教室", has_button(TITLE[:10]))
    details = await hanako.taps(listing, TITLE[:10], has_button("申し込む"))
    assert TITLE in (details.text or "")
    await hanako.taps(details, "申し込む", has_button("メニューに戻る"))  # the name step
    phone_step = await hanako.says("山田 花子", has_keyboard("電話番号なしで進む"))
    assert phone_step.keyboard is not None
    seats_step = await hanako.says("090-1234-5678", has_button("1人"))
    confirm = await hanako.taps(seats_step, "1人", has_button("申し込む"))
    assert "山田 花子" in (confirm.text or "")
    await hanako.taps(confirm, "申し込む", has_button("予約の確認"))
    async with town.context.session_factory() as db:
        (registration,) = await list_registrations(db, klass.id)
    assert registration.status == RegistrationStatus.CONFIRMED
    assert registration.name == "山田 花子"

    # The staff member sees them on the class page, the list and the print view.
    await page.reload()
    confirmed = page.locator("section").filter(
        has=page.get_by_role("heading", name=re.compile("申込者"))
    )
    await expect(confirmed.get_by_role("cell", name="山田 花子", exact=True)).to_be_visible()
    await expect(confirmed).to_contain_text("09012345678")
    await expect(page.get_by_text("1／8席").first).to_be_visible()
    assert await fits_width(page)
    await page.screenshot(path=ARTIFACTS / "admin-class-detail.png", full_page=True)

    await confirmed.get_by_role("button", name="山田 花子 様を出席にする").click()
    await expect(page.get_by_role("status")).to_contain_text("出席")
    await expect(confirmed.locator(".badge", has_text="出席")).to_be_visible()
    await expect(
        confirmed.get_by_role("button", name="山田 花子 様の出席を取り消す")
    ).to_be_visible()

    await page.get_by_role("link", name="印刷用の名簿").click()
    await expect(page.get_by_role("heading", name=f"{TITLE} 名簿")).to_be_visible()
    await expect(page.get_by_role("cell", name="山田 花子", exact=True)).to_be_visible()
    await page.emulate_media(media="print")
    await expect(page.get_by_role("navigation", name="メニュー")).to_be_hidden()
    await page.screenshot(path=ARTIFACTS / "admin-class-print.png", full_page=True)
    await page.emulate_media(media="screen")

    # The roster CSV downloads with the resident on it.
    async with page.expect_download() as download_info:
        await page.goto(f"{town.base_url}/admin/classes/{klass.id}")
        await page.get_by_role("link", name="名簿をCSVで書き出す（Excel）").click()
    download = await download_info.value
    data = Path(await download.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert "山田 花子" in data.decode("utf-8-sig")

    await (
        page.get_by_role("navigation", name="メニュー")
        .get_by_role("link", name="スマホ教室")
        .click()
    )
    await expect(page.get_by_role("link", name=TITLE)).to_be_visible()
    await expect(page.get_by_text("1／8席")).to_be_visible()
    await page.screenshot(path=ARTIFACTS / "admin-classes-list.png", full_page=True)

    await (
        page.get_by_role("navigation", name="メニュー")
        .get_by_role("link", name="ダッシュボード")
        .click()
    )
    classes_card = page.locator("section.card").filter(has_text="スマホ教室の申込状況")
    await expect(classes_card.get_by_role("link", name=TITLE)).to_be_visible()
    await expect(classes_card).to_contain_text("1／8席")
    await classes_card.scroll_into_view_if_needed()
    await page.screenshot(path=ARTIFACTS / "admin-dashboard-classes.png")
    await page.context.close()
