"""The local demo in a real browser: `madoguchi run` without BOT_TOKEN (as `make run`),
opened in Debian's Chromium through Playwright; a real conversation, with screenshots in
test-artifacts/ (look at them: they are the documented check of the demo page).

`make browser` (which .ci/run calls) installs Chromium and the fonts; without Chromium this
test is skipped with that reason.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import messages

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
COUNTER_PHONE = "0555-12-3456"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: run `make browser`"
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def demo_url(cli_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`madoguchi run` in demo mode (no BOT_TOKEN); the URL it prints."""
    script = Path(sys.executable).parent / "madoguchi"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "madoguchi.cli"]
    env = {
        **cli_env,
        "MADOGUCHI_HTTP_PORT": str(free_port()),
        "MADOGUCHI_TOWN_NAME": "みどり町",
        "MADOGUCHI_COUNTER_NAME": "みどり町役場 住民課",
        "MADOGUCHI_COUNTER_PHONE": COUNTER_PHONE,
        "MADOGUCHI_COUNTER_HOURS": "平日 8:30〜17:15",
    }
    log = (tmp_path / "demo.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*command, "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        encoding="utf-8",
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        url = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "demo chat" in line:
                url = line.rsplit(" ", 1)[1].strip()
                break
        assert url, (tmp_path / "demo.log").read_text("utf-8")
        yield url
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()
        if process.stdout is not None:
            process.stdout.close()


def test_demo_conversation_in_chromium(demo_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(
                viewport={"width": 412, "height": 915}, device_scale_factor=1, locale="ja-JP"
            )
            page = phone.new_page()
            page.goto(demo_url)
            expect(page.get_by_text("体験版です。")).to_be_visible()

            # 1. The START button, the greeting and the menu of big buttons.
            page.get_by_role("button", name="はじめる").click()
            expect(page.get_by_text("よくある質問にお答えします")).to_be_visible()
            for label in messages.MENU_BUTTONS:
                expect(page.locator("#menu").get_by_role("button", name=label)).to_be_visible()
            page.screenshot(path=ARTIFACTS / "demo-1-start.png")

            # 2. 質問する, a typed My Number question, the answer, 👍.
            page.locator("#menu").get_by_role("button", name=messages.BUTTON_ASK).click()
            expect(page.get_by_text("ご質問を文字で送ってください。")).to_be_visible()
            page.get_by_label("メッセージ").fill("マイナンバーカードをなくしました")
            page.get_by_label("メッセージ").press("Enter")
            expect(page.get_by_text("0120-95-0178").last).to_be_visible()
            helpful = page.get_by_role("button", name=messages.BUTTON_HELPFUL).last
            expect(helpful).to_be_visible()
            expect(page.get_by_label("メッセージ")).to_have_value("")
            helpful.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "demo-2-answer.png")
            helpful.click()
            expect(page.locator("#toast")).to_have_text(messages.FEEDBACK_THANKS)
            page.screenshot(path=ARTIFACTS / "demo-3-thanks.png")

            # 3. Browsing by buttons only: カテゴリから探す → a category → a question.
            page.locator("#menu").get_by_role("button", name=messages.BUTTON_CATEGORIES).click()
            expect(page.get_by_text(messages.CATEGORIES)).to_be_visible()
            category = page.locator(".row.bot").last.get_by_role("button").first
            name = category.inner_text()
            category.click()
            expect(page.get_by_text(f"「{name}」の質問です")).to_be_visible()
            question = page.locator(".row.bot").last.get_by_role("button").first
            question_text = question.inner_text().rstrip("…")
            question.click()
            expect(page.locator(".row.bot").last).to_contain_text(question_text)
            expect(
                page.locator(".row.bot").last.get_by_role("button", name=messages.BUTTON_HELPFUL)
            ).to_be_visible()
            page.screenshot(path=ARTIFACTS / "demo-4-category-answer.png")

            # 4. A question the FAQ cannot answer: the counter's phone, and a person.
            page.get_by_label("メッセージ").fill("今日の天気は？")
            page.get_by_role("button", name="送信").click()
            last = page.locator(".row.bot").last
            expect(last).to_contain_text("お答えできませんでした")
            expect(last).to_contain_text(COUNTER_PHONE)
            expect(last.get_by_role("button", name=messages.BUTTON_LEAVE_FOR_STAFF)).to_be_visible()
            page.screenshot(path=ARTIFACTS / "demo-5-fallback.png")
            page.screenshot(path=ARTIFACTS / "demo-full-conversation.png", full_page=True)

            # 5. 150 % zoom on a laptop screen, keyboard only: nothing runs off the side.
            zoomed = browser.new_context(
                viewport={"width": 853, "height": 533}, device_scale_factor=1.5, locale="ja-JP"
            )
            page2 = zoomed.new_page()
            page2.goto(demo_url)
            expect(page2.get_by_role("button", name="はじめる")).to_be_visible()
            page2.keyboard.press("Tab")  # the skip-free order: はじめる first
            page2.keyboard.press("Enter")
            expect(page2.get_by_text("よくある質問にお答えします")).to_be_visible()
            page2.get_by_label("メッセージ").focus()
            page2.keyboard.type("スマホ教室はいつありますか")
            page2.keyboard.press("Enter")
            expect(page2.locator(".row.me").last).to_contain_text("スマホ教室はいつありますか")
            expect(page2.locator(".row.bot")).to_have_count(2)
            assert page2.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
            # A second visitor starts with an empty chat: no one sees another's conversation.
            expect(page2.get_by_text("マイナンバーカードをなくしました")).to_have_count(0)
            page2.screenshot(path=ARTIFACTS / "demo-6-zoom150.png")
        finally:
            browser.close()


def test_demo_class_sign_up_in_chromium(demo_url: str) -> None:
    """スマホ教室 in the demo: the 【サンプル】 classes, a sign-up with the share-contact button
    (a sample number), the calendar file (downloaded from the visitor's own chat only) and
    予約の確認, on a phone-sized screen with large text."""
    from playwright.sync_api import expect, sync_playwright

    from bot import messages_classes as texts
    from bot.demo import DEMO_FIRST_NAME, DEMO_PHONE_SHOWN
    from classes.samples import SAMPLE_PREFIX, SAMPLES

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(
                viewport={"width": 412, "height": 915},
                device_scale_factor=1,
                locale="ja-JP",
                accept_downloads=True,
            )
            page = phone.new_page()
            page.goto(demo_url)
            page.get_by_role("button", name="はじめる").click()
            expect(page.get_by_text("よくある質問にお答えします")).to_be_visible()
            menu = page.locator("#menu")

            def last_bot() -> Any:
                return page.locator(".row.bot").last

            def show(locator: Any, block: str = "end") -> None:
                """Scroll the element on screen (its end, or its start), clear of the footer."""
                locator.evaluate("(e, block) => e.scrollIntoView({block: block})", block)
                page.mouse.move(0, 0)  # no hover highlight left on a tapped button

            def fits() -> bool:
                return bool(
                    page.evaluate(
                        "document.documentElement.scrollWidth"
                        " <= document.documentElement.clientWidth"
                    )
                )

            # 1. スマホ教室: the three sample classes, marked 【サンプル】.
            menu.get_by_role("button", name=messages.BUTTON_CLASSES).click()
            expect(last_bot()).to_contain_text("スマホ教室の予定です。")
            listing = last_bot()
            for sample in SAMPLES:
                expect(listing).to_contain_text(f"■ {sample.title}")
            # Marked twice each: in the list text and on the class's button.
            assert listing.inner_text().count(SAMPLE_PREFIX) == 2 * len(SAMPLES)
            # One button per class: day, start, title (with its sample mark) and seats left.
            class_buttons = listing.get_by_role("button", name=SAMPLE_PREFIX)
            expect(class_buttons).to_have_count(len(SAMPLES))
            expect(
                listing.get_by_role("button", name=texts.BUTTON_MY_REGISTRATIONS)
            ).to_be_visible()
            show(class_buttons.last)
            assert fits()
            page.screenshot(path=ARTIFACTS / "demo-classes-1-list.png")

            # 2. One class, 申し込む, the name Telegram knows (体験).
            class_buttons.first.click()
            expect(last_bot()).to_contain_text("■ 【サンプル】はじめてのスマホ")
            expect(last_bot()).to_contain_text("持ち物")
            page.screenshot(path=ARTIFACTS / "demo-classes-2-details.png")
            last_bot().get_by_role("button", name=texts.BUTTON_APPLY, exact=True).click()
            expect(last_bot()).to_contain_text(f"「{DEMO_FIRST_NAME}」でよろしければ")
            last_bot().get_by_role("button", name=texts.BUTTON_USE_NAME).click()

            # 3. The phone step: a reply keyboard whose 「電話番号を送る」 shares a contact.
            expect(last_bot()).to_have_text(re.compile(re.escape(texts.PHONE_PROMPT)))
            share = menu.get_by_role("button", name=texts.BUTTON_SEND_PHONE)
            expect(share).to_be_visible()
            for label in (texts.BUTTON_NO_PHONE, texts.BUTTON_BACK, texts.BUTTON_MENU):
                expect(menu.get_by_role("button", name=label, exact=True)).to_be_visible()
            expect(menu).to_contain_text(f"見本の番号（{DEMO_PHONE_SHOWN}）")
            expect(page.get_by_label("メッセージ")).to_have_attribute(
                "placeholder", texts.PHONE_PLACEHOLDER
            )
            assert fits()
            page.screenshot(path=ARTIFACTS / "demo-classes-3-phone-step.png")
            share.click()
            expect(page.locator(".row.me").last).to_contain_text("電話番号を送りました")
            expect(page.locator(".row.me").last).to_contain_text(DEMO_PHONE_SHOWN)
            expect(page.get_by_text(texts.PHONE_SAVED)).to_be_visible()
            # The label was not sent as text: the bot never said the button does not work here.
            expect(page.get_by_text(texts.PHONE_BUTTON_UNAVAILABLE)).to_have_count(0)
            # The menu keyboard is back under the input.
            for label in messages.MENU_BUTTONS:
                expect(menu.get_by_role("button", name=label)).to_be_visible()
            expect(menu.get_by_role("button", name=texts.BUTTON_SEND_PHONE)).to_have_count(0)

            # 4. Seats and the confirmation screen (with the shared sample number).
            seats = last_bot()
            expect(seats.get_by_role("button", name="1人")).to_be_visible()
            show(page.locator(".row.me").last, "start")  # the shared contact, then seats
            page.screenshot(path=ARTIFACTS / "demo-classes-4-contact-and-seats.png")
            seats.get_by_role("button", name="1人").click()
            confirm = last_bot()
            expect(confirm).to_contain_text("この内容で申し込みます。")
            expect(confirm).to_contain_text("9000000000")
            show(confirm)
            page.screenshot(path=ARTIFACTS / "demo-classes-5-confirm.png")
            confirm.get_by_role("button", name=texts.BUTTON_APPLY, exact=True).click()

            # 5. Done: the summary and the calendar file, with its name, caption and a link.
            expect(page.get_by_text("申し込みが完了しました。")).to_be_visible()
            calendar = page.locator(".row.bot", has=page.locator(".file")).last
            expect(calendar).to_contain_text(".ics")
            expect(calendar).to_contain_text("カレンダーに予定を入れるためのファイルです。")
            save = calendar.get_by_role("link", name="ファイルを保存する")
            expect(save).to_be_visible()
            show(calendar)
            assert fits()
            page.screenshot(path=ARTIFACTS / "demo-classes-6-done.png")
            with page.expect_download() as download_info:
                save.click()
            download = download_info.value
            assert download.suggested_filename.endswith(".ics")
            content = Path(download.path()).read_bytes()
            assert content.startswith(b"BEGIN:VCALENDAR")
            assert "はじめてのスマホ" in content.decode("utf-8")
            href = save.get_attribute("href")
            assert href is not None
            # Another visitor (another cookie) cannot fetch this visitor's file.
            stranger = browser.new_context()
            try:
                response = stranger.request.get(demo_url.rstrip("/") + href)
                assert response.status == 404
            finally:
                stranger.close()

            # 6. 予約の確認: the registration, with キャンセルする.
            calendar.get_by_role("button", name=texts.BUTTON_MY_REGISTRATIONS).click()
            mine = last_bot()
            expect(mine).to_contain_text("状態：申し込み済み（席が確保されています）")
            expect(mine).to_contain_text("【サンプル】はじめてのスマホ")
            expect(mine.get_by_role("button", name=texts.BUTTON_CANCEL)).to_be_visible()
            show(mine)
            assert fits()
            page.screenshot(path=ARTIFACTS / "demo-classes-7-mine.png")
            page.screenshot(path=ARTIFACTS / "demo-classes-full.png", full_page=True)
            assert not any(
                messages.APOLOGY in text for text in page.locator(".row.bot").all_inner_texts()
            )
        finally:
            browser.close()
