"""Resident flows through the real dispatcher, handlers and keyboards (recording session)."""

from __future__ import annotations

from botkit import TOWN, Harness
from sqlalchemy import select

from bot import messages
from bot.callbacks import CategoryCb, EntryCb, category_ref
from faq.inquiry_models import QuestionLog

HANAKO = 111
MENU_ROWS = [["質問する", "カテゴリから探す"], ["スマホ教室", "窓口・電話"]]


async def _logs(harness: Harness) -> list[QuestionLog]:
    async with harness.context.session_factory() as session:
        return list(await session.scalars(select(QuestionLog).order_by(QuestionLog.id)))


async def test_start_shows_greeting_and_the_persistent_menu(harness: Harness) -> None:
    [sent] = await harness.text(HANAKO, "/start")
    assert "こんにちは" in sent.text
    assert TOWN["town_name"] in sent.text
    assert sent.reply_buttons == MENU_ROWS
    assert sent.reply_markup.is_persistent is True
    assert sent.reply_markup.resize_keyboard is True


async def test_menu_and_help_commands(harness: Harness) -> None:
    [menu] = await harness.text(HANAKO, "/menu")
    assert menu.text == messages.MENU
    assert menu.reply_buttons == MENU_ROWS
    [help_message] = await harness.text(HANAKO, "/help")
    assert "カテゴリから探す" in help_message.text
    assert TOWN["counter_phone"] in help_message.text
    [unknown] = await harness.text(HANAKO, "/foo")
    assert unknown.text == messages.UNKNOWN_COMMAND
    assert unknown.reply_buttons == MENU_ROWS


async def test_menu_buttons(harness: Harness) -> None:
    [ask] = await harness.text(HANAKO, "質問する")
    assert ask.text.startswith("ご質問を文字で送ってください。")
    assert "例：" in ask.text
    [classes] = await harness.text(HANAKO, "スマホ教室")
    # No class is scheduled in this database: the resident is told so, and whom to ask.
    assert "スマホ教室は、いまはありません" in classes.text
    assert TOWN["class_contact"] in classes.text
    assert TOWN["counter_phone"] in classes.text
    assert classes.labels == ["メニューに戻る"]
    [contact] = await harness.text(HANAKO, "窓口・電話")
    for value in ("counter_name", "counter_phone", "counter_hours", "counter_place"):
        assert TOWN[value] in contact.text
    # メニューに戻る
    [menu], [answer] = await harness.press(HANAKO, contact.button("メニューに戻る"))
    assert menu.text == messages.MENU
    assert menu.reply_buttons == MENU_ROWS
    assert answer.text is None
    assert await _logs(harness) == []  # menu buttons are not questions


async def test_my_number_question_is_answered_with_the_right_entry(harness: Harness) -> None:
    question = "マイナンバーカードの暗証番号を忘れました。どうすればいいですか？"
    [sent] = await harness.text(HANAKO, question)
    assert sent.text.startswith(
        "■ マイナンバーカードの暗証番号を忘れました。どうすればいいですか？"
    )
    assert "役場の窓口で設定し直せます" in sent.text
    assert TOWN["counter_phone"] in sent.text  # placeholders filled from settings
    assert "{counter" not in sent.text
    assert "https://www2.jpki.go.jp/faq/digital_id.html" in sent.text
    assert sent.labels == ["👍 役に立った", "👎 役に立たなかった", "メニューに戻る"]
    assert sent.buttons[0][0][1].startswith("f:")
    [log] = await _logs(harness)
    assert (log.outcome, log.faq_id, log.channel) == ("answered", "mn-pin-forgotten", "demo")
    assert log.question == question
    assert log.left_for_staff is False


async def test_short_my_number_question_reaches_the_entry(harness: Harness) -> None:
    """The engine may answer at once or ask 「もしかして」 first (its thresholds are the
    engine's business); either way the resident reaches mn-pin-forgotten in one tap."""
    [sent] = await harness.text(HANAKO, "マイナンバーカードの暗証番号を忘れました")
    if sent.text.startswith("もしかして"):
        assert sent.buttons[0][0][1].endswith(":mn-pin-forgotten")
        [sent], _ = await harness.press(HANAKO, sent.buttons[0][0][1])
    assert sent.text.startswith(
        "■ マイナンバーカードの暗証番号を忘れました。どうすればいいですか？"
    )
    assert sent.labels == ["👍 役に立った", "👎 役に立たなかった", "メニューに戻る"]


async def test_suggestion_then_pick_a_candidate(harness: Harness) -> None:
    [sent] = await harness.text(HANAKO, "暗証番号")
    assert sent.text.startswith("もしかして、次のご質問ですか？")
    assert sent.labels[-2:] == ["どれでもない", "メニューに戻る"]
    candidates = sent.buttons[:-2]
    assert 1 <= len(candidates) <= 5
    label, data = candidates[0][0]
    [answer], [ack] = await harness.press(HANAKO, data)
    assert answer.text.startswith(f"■ {label.rstrip('…')}")
    assert answer.labels == ["👍 役に立った", "👎 役に立たなかった", "メニューに戻る"]
    assert ack.show_alert is not True
    [log] = await _logs(harness)
    assert log.outcome == "suggested"
    # 「どれでもない」 leads to the fallback with the phone number.
    [fallback], _ = await harness.press(HANAKO, sent.button("どれでもない"))
    assert fallback.text.startswith("申し訳ありません。お答えできませんでした。")
    assert TOWN["counter_phone"] in fallback.text
    assert fallback.labels == ["職員に質問を伝える", "メニューに戻る"]


async def test_fallback_offers_phone_and_leaving_the_question_for_staff(harness: Harness) -> None:
    [sent] = await harness.text(HANAKO, "町営プールのウォータースライダーは何メートル？")
    assert sent.text.startswith("申し訳ありません。お答えできませんでした。")
    assert TOWN["counter_phone"] in sent.text
    assert TOWN["counter_hours"] in sent.text
    assert sent.labels == ["職員に質問を伝える", "メニューに戻る"]
    [log] = await _logs(harness)
    assert (log.outcome, log.faq_id, log.left_for_staff) == ("fallback", None, False)

    [confirm], [ack] = await harness.press(HANAKO, sent.button("職員に質問を伝える"))
    assert "職員に伝えました" in confirm.text
    assert "個別にお返事できません" in confirm.text
    assert confirm.labels == ["メニューに戻る"]
    assert ack.text is None
    [log] = await _logs(harness)
    assert log.left_for_staff is True
    assert log.staff_status == "open"
    # A second tap does not send the confirmation again.
    again, [ack] = await harness.press(HANAKO, sent.button("職員に質問を伝える"))
    assert again == []
    assert ack.text == messages.ALREADY_LEFT_FOR_STAFF


async def test_category_browsing_with_pages(harness: Harness) -> None:
    [categories] = await harness.text(HANAKO, "カテゴリから探す")
    assert categories.text == messages.CATEGORIES
    assert "マイナンバーカード" in categories.labels
    assert categories.labels[-1] == "メニューに戻る"
    assert all(len(data.encode()) <= 64 for row in categories.buttons for _, data in row)

    [page1], _ = await harness.press(HANAKO, categories.button("マイナンバーカード"))
    assert page1.text.startswith("「マイナンバーカード」の質問です。")
    assert "（1／5ページ）" in page1.text  # 35 entries, 8 a page
    questions = [row for row in page1.buttons if row[0][1].startswith("e:")]
    assert len(questions) == 8
    assert [label for label, _ in page1.buttons[8]] == ["次へ ▶"]
    assert page1.labels[-2:] == ["カテゴリ一覧に戻る", "メニューに戻る"]

    [page2], _ = await harness.press(HANAKO, page1.button("次へ ▶"))
    assert "（2／5ページ）" in page2.text
    assert [label for label, _ in page2.buttons[8]] == ["◀ 前へ", "次へ ▶"]
    first_on_page2 = page2.buttons[0][0]
    assert first_on_page2 not in [row[0] for row in questions]

    [back], _ = await harness.press(HANAKO, page2.button("◀ 前へ"))
    assert "（1／5ページ）" in back.text

    label, data = first_on_page2
    [answer], _ = await harness.press(HANAKO, data)
    assert answer.text.startswith(f"■ {label.rstrip('…')}")
    assert answer.labels == [
        "👍 役に立った",
        "👎 役に立たなかった",
        "質問の一覧に戻る",
        "メニューに戻る",
    ]
    [list_again], _ = await harness.press(HANAKO, answer.button("質問の一覧に戻る"))
    assert "（2／5ページ）" in list_again.text

    [categories_again], _ = await harness.press(HANAKO, page2.button("カテゴリ一覧に戻る"))
    assert categories_again.text == messages.CATEGORIES
    assert await _logs(harness) == []  # browsing is not a question


async def test_last_page_has_no_next_button(harness: Harness) -> None:
    cat = category_ref("マイナンバーカード")
    [last], _ = await harness.press(HANAKO, CategoryCb(cat=cat, page=4).pack())
    assert "（5／5ページ）" in last.text
    assert "次へ ▶" not in last.labels
    assert "◀ 前へ" in last.labels
    entries = [data for row in last.buttons for _, data in row if data.startswith("e:")]
    assert len(entries) == 35 - 4 * 8
    # A small category has one page and no paging buttons.
    [small], _ = await harness.press(
        HANAKO, CategoryCb(cat=category_ref("窓口・問い合わせ")).pack()
    )
    assert "ページ" not in small.text
    assert "次へ ▶" not in small.labels


async def test_long_answers_are_split_politely() -> None:
    text = "\n\n".join(f"{n}番目の段落です。" + "あ" * 900 for n in range(10))
    parts = messages.split_message(text)
    assert len(parts) > 1
    assert all(len(part) <= 4096 for part in parts)
    assert all(part.endswith("（続きます）") for part in parts[:-1])
    assert "".join(p.removesuffix("\n（続きます）") for p in parts).replace(
        "\n", ""
    ) == text.replace("\n", "")
    # No paragraph boundary at all: still cut within the limit.
    parts = messages.split_message("い" * 10000)
    assert all(len(part) <= 4096 for part in parts)
    assert sum(len(p.removesuffix("\n（続きます）")) for p in parts) == 10000


async def test_entry_refs_fit_callback_data() -> None:
    long_id = "x" * 64
    data = EntryCb(
        ref=__import__("bot.callbacks").callbacks.entry_ref(long_id), cat="abcdef12", page=99
    ).pack()
    assert len(data.encode()) <= 64
