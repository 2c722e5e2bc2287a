"""The staff admin in a real browser (Debian's Chromium through Playwright): a staff member
logs in, edits an FAQ answer, and the bot — polling the fake Bot API — answers a resident
with the new text at once. Screenshots of the login page, the FAQ list, the edit page and
the try box are kept in test-artifacts/ (look at them: they are the check of the layout).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from adminkit import fast_hasher
from aiohttp import web

from admin.accounts import LoginPolicy, create_staff
from admin.web import create_admin_app
from bot.fake_api import FakeBotAPI
from bot.runner import BotRuntime
from madoguchi.app import AppContext, open_app
from madoguchi.db import session_scope, utcnow
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
PASSWORD = "midori-yakuba-2026"
LOST_QUESTION = "マイナンバーカードをなくしました"
LOST_ID = "mn-lost-stolen"
NEW_ANSWER = (
    "【みどり町からのお知らせ】マイナンバーカードをなくしたときは、"
    "まず 0120-95-0178（24時間）に電話してカードを止め、警察に届けてください。"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: run `make browser`"
    ),
]


@pytest.fixture
async def running(
    isolated_settings_env: Path, tmp_path: Path
) -> AsyncIterator[tuple[AppContext, FakeBotAPI, str]]:
    """`madoguchi run` in one process: the curated FAQ, the bot polling a fake Bot API, and
    the one web server with the admin, on a free port."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'browser.sqlite3'}",
        town_name="みどり町",
        counter_name="みどり町役場 住民課",
        counter_phone="0555-12-3456",
    )
    async with open_app(settings) as context:
        async with session_scope(context.session_factory) as db:
            await create_staff(
                db,
                "yamada",
                PASSWORD,
                display_name="山田 太郎",
                now=utcnow(),
                hasher=fast_hasher(),
            )
        api = FakeBotAPI(token="515151:ADMIN-BROWSER")
        base = await api.start()
        runtime = BotRuntime(context, token=api.token, api_base=base)
        await runtime.start_polling()
        admin = create_admin_app(
            context, hasher=fast_hasher(), policy=LoginPolicy(failure_delay=0.1)
        )
        runner = web.AppRunner(create_web_app(context, admin=admin), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield context, api, f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
            await runtime.stop()
            await api.stop()


async def test_staff_edit_reaches_the_bot(running: tuple[AppContext, FakeBotAPI, str]) -> None:
    from playwright.async_api import async_playwright, expect

    _context, api, base = running
    ARTIFACTS.mkdir(exist_ok=True)

    # Before: the resident gets the curated answer.
    api.send_text(5001, LOST_QUESTION)
    (before,) = await api.wait_for_messages(5001, 1, 15)
    assert "【みどり町からのお知らせ】" not in (before.text or "")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            desk = await browser.new_context(
                viewport={"width": 1280, "height": 860}, locale="ja-JP"
            )
            page = await desk.new_page()

            # 1. Login (a wrong password first: the uniform message).
            await page.goto(f"{base}/admin/faq")
            await expect(page.get_by_role("heading", name="職員ログイン")).to_be_visible()
            await page.get_by_label("ユーザー名").fill("yamada")
            await page.get_by_label("パスワード").fill("wrong-password-1")
            await page.get_by_role("button", name="ログイン").click()
            await expect(page.get_by_text("ユーザー名またはパスワードが違います")).to_be_visible()
            await page.get_by_label("パスワード").fill(PASSWORD)
            await page.screenshot(path=ARTIFACTS / "admin-1-login.png")
            await page.get_by_label("パスワード").press("Enter")

            # 2. The FAQ list (where the login was headed), searched.
            await expect(page.get_by_role("heading", name="FAQ（よくある質問）")).to_be_visible()
            await expect(page.get_by_text("山田 太郎 さん")).to_be_visible()
            await page.get_by_label("キーワードで探す").fill("マイナンバー")
            await page.get_by_role("button", name="絞り込む").click()
            entry_link = page.get_by_role("link", name=LOST_QUESTION)
            await expect(entry_link).to_be_visible()
            await page.screenshot(path=ARTIFACTS / "admin-2-faq-list.png", full_page=True)

            # 3. Edit the answer.
            await entry_link.click()
            await expect(page.get_by_role("heading", name="問い合わせの編集")).to_be_visible()
            await page.get_by_label("応答文（ボットの答え）").fill(NEW_ANSWER)
            await page.screenshot(path=ARTIFACTS / "admin-3-faq-edit.png", full_page=True)
            await page.get_by_role("button", name="保存する").click()
            await expect(page.get_by_role("status")).to_contain_text("保存しました")

            # 4. The try box shows the new answer, the outcome and the candidates.
            await page.goto(f"{base}/admin/try")
            await page.get_by_role("searchbox").fill(LOST_QUESTION)
            await page.get_by_role("button", name="試す").click()
            await expect(page.get_by_text("答えます", exact=True)).to_be_visible()
            await expect(page.locator(".answer-text")).to_contain_text("【みどり町からのお知らせ】")
            await expect(page.locator(".try-result table tbody tr").first).to_contain_text(LOST_ID)
            await page.screenshot(path=ARTIFACTS / "admin-4-try.png", full_page=True)

            # 5. 150 % zoom, keyboard only: the nav is reachable, nothing runs off the side.
            zoomed = await browser.new_context(
                viewport={"width": 853, "height": 573},
                device_scale_factor=1.5,
                locale="ja-JP",
                storage_state=await desk.storage_state(),
            )
            page2 = await zoomed.new_page()
            await page2.goto(f"{base}/admin/faq")
            await page2.keyboard.press("Tab")  # 本文へ移動
            await page2.keyboard.press("Tab")  # ログアウト
            await page2.keyboard.press("Tab")  # ダッシュボード
            await page2.keyboard.press("Tab")  # FAQ
            focused = await page2.evaluate("document.activeElement.textContent")
            assert focused.strip() == "FAQ"
            assert await page2.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
            await page2.screenshot(path=ARTIFACTS / "admin-5-zoom150.png")
        finally:
            await browser.close()

    # The bot answers with the new text at once (no restart, no refresh interval).
    api.send_text(5001, LOST_QUESTION)
    (after,) = await api.wait_for_messages(5001, 1, 15)
    assert NEW_ANSWER in (after.text or "")
