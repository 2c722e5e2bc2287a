"""Flows where database behaviour matters: run on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from botkit import Harness
from sqlalchemy import func, select

from bot import messages
from bot.callbacks import FeedbackCb, NoneOfTheseCb, StaffCb, SuggestCb
from faq.inquiry_models import Feedback, QuestionLog
from madoguchi.residents import Resident

HANAKO = 111
TARO = 222
QUESTION = "マイナンバーカードの暗証番号を忘れました。どうすればいいですか？"


async def _snapshot(harness: Harness) -> dict[str, list[tuple[Any, ...]]]:
    async with harness.context.session_factory() as session:
        residents = await session.execute(
            select(Resident.id, Resident.telegram_user_id, Resident.blocked_at).order_by(
                Resident.id
            )
        )
        logs = await session.execute(
            select(
                QuestionLog.id,
                QuestionLog.resident_id,
                QuestionLog.outcome,
                QuestionLog.faq_id,
                QuestionLog.left_for_staff,
            ).order_by(QuestionLog.id)
        )
        feedback = await session.execute(
            select(
                Feedback.resident_id, Feedback.question_log_id, Feedback.faq_id, Feedback.helpful
            ).order_by(Feedback.id)
        )
        return {
            "residents": [tuple(row) for row in residents],
            "logs": [tuple(row) for row in logs],
            "feedback": [tuple(row) for row in feedback],
        }


async def test_thumbs_up_double_tap_is_stored_once(db_harness: Harness) -> None:
    [answer] = await db_harness.text(HANAKO, QUESTION)
    up = answer.button("👍 役に立った")
    for _ in range(2):
        sent, [ack] = await db_harness.press(HANAKO, up)
        assert sent == []
        assert ack.text == "ありがとうございます"
    snapshot = await _snapshot(db_harness)
    [(resident_id, _tg, _blocked)] = snapshot["residents"]
    [(log_id, *_rest)] = snapshot["logs"]
    assert snapshot["feedback"] == [(resident_id, log_id, "mn-pin-forgotten", True)]


async def test_thumbs_down_offers_staff_then_change_of_mind_updates(db_harness: Harness) -> None:
    [answer] = await db_harness.text(HANAKO, QUESTION)
    [offer], [ack] = await db_harness.press(HANAKO, answer.button("👎 役に立たなかった"))
    assert ack.text == "ありがとうございます"
    assert offer.text.startswith("お役に立てず、申し訳ありません。")
    assert "0555-12-3456" in offer.text
    assert offer.labels == ["職員に質問を伝える", "メニューに戻る"]
    snapshot = await _snapshot(db_harness)
    assert [row[3] for row in snapshot["feedback"]] == [False]
    # A second 👎 is not counted and does not repeat the offer.
    again, _ = await db_harness.press(HANAKO, answer.button("👎 役に立たなかった"))
    assert again == []
    # Change of mind: the same vote is updated.
    sent, [ack] = await db_harness.press(HANAKO, answer.button("👍 役に立った"))
    assert sent == []
    assert ack.text == "ありがとうございます"
    snapshot = await _snapshot(db_harness)
    assert [row[3] for row in snapshot["feedback"]] == [True]
    # The staff offer after 👎 works on the resident's own question.
    [confirm], _ = await db_harness.press(HANAKO, offer.button("職員に質問を伝える"))
    assert "職員に伝えました" in confirm.text
    assert (await _snapshot(db_harness))["logs"][0][4] is True


async def test_feedback_while_browsing_has_no_question_log(db_harness: Harness) -> None:
    data = FeedbackCb(log=0, ref="mn-pin-types", helpful=False).pack()
    [offer], [ack] = await db_harness.press(HANAKO, data)
    assert ack.text == "ありがとうございます"
    assert "職員に質問を伝える" not in offer.labels  # no question to pass on
    assert offer.labels == ["窓口・電話を見る", "メニューに戻る"]
    await db_harness.press(HANAKO, data)
    feedback = (await _snapshot(db_harness))["feedback"]
    assert [(row[1], row[2], row[3]) for row in feedback] == [(None, "mn-pin-types", False)]


async def test_mydata_shows_and_deletes_only_that_residents_data(db_harness: Harness) -> None:
    for user in (HANAKO, TARO):
        [answer] = await db_harness.text(user, QUESTION)
        await db_harness.press(user, answer.button("👍 役に立った"))
        await db_harness.text(user, "町営プールのウォータースライダーは何メートル？")
    [summary] = await db_harness.text(HANAKO, "/mydata")
    assert "これまでのご質問：2件" in summary.text
    assert "回答：1件" in summary.text
    assert "＊＊＊" in summary.text
    assert summary.labels == ["すべて削除する", "メニューに戻る"]

    [confirm], _ = await db_harness.press(HANAKO, summary.button("すべて削除する"))
    assert confirm.text.startswith("本当に削除しますか？")
    assert confirm.labels == ["はい、削除します", "いいえ"]
    [kept], _ = await db_harness.press(HANAKO, confirm.button("いいえ"))
    assert kept.text == messages.NOT_DELETED
    before = await _snapshot(db_harness)
    assert len(before["logs"]) == 4

    [done], _ = await db_harness.press(HANAKO, confirm.button("はい、削除します"))
    assert done.text == messages.DELETED
    assert done.reply_buttons  # the menu again
    after = await _snapshot(db_harness)
    taro = [row for row in before["residents"] if row[1] == TARO]
    assert after["residents"] == taro
    taro_id = taro[0][0]
    assert after["logs"] == [row for row in before["logs"] if row[1] == taro_id]
    assert len(after["logs"]) == 2
    assert after["feedback"] == [row for row in before["feedback"] if row[0] == taro_id]
    assert len(after["feedback"]) == 1


async def test_forged_callbacks_answer_politely_and_change_nothing(db_harness: Harness) -> None:
    [taro_answer] = await db_harness.text(TARO, "町営プールのウォータースライダーは何メートル？")
    taro_log = int(taro_answer.button("職員に質問を伝える").split(":")[1])
    await db_harness.text(HANAKO, "/start")
    before = await _snapshot(db_harness)
    forged = [
        "garbage",
        "",
        "f:abc:mn-pin-types:1",
        "f:1:mn-pin-types:2",
        f"f:{taro_log}:mn-pin-types:1",  # another resident's question
        FeedbackCb(log=0, ref="no-such-entry", helpful=True).pack(),
        StaffCb(log=taro_log).pack(),
        StaffCb(log=999999).pack(),
        NoneOfTheseCb(log=taro_log).pack(),
        SuggestCb(log=taro_log, ref="mn-pin-types").pack(),
        "c:ffffffff:0",
        "c:" + "x" * 8 + ":-1",
        "e:no-such-entry::0",
        "e:~0123456789ab::0",
        "m:zz",
        "d:zz",
        "s:1:" + "x" * 50,
    ]
    for data in forged:
        sent, [ack] = await db_harness.press(HANAKO, data)
        assert sent == [], data
        assert ack.text == messages.STALE, data
        assert ack.show_alert is True
    after = await _snapshot(db_harness)
    assert after == before


async def test_403_on_send_marks_the_resident_blocked(db_harness: Harness) -> None:
    await db_harness.text(HANAKO, "/start")
    db_harness.session.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    sent = await db_harness.text(HANAKO, QUESTION)
    attempts = [r for r in db_harness.session.requests if r.__api_method__ == "sendMessage"]
    assert len(attempts) == 2  # /start, then the one refused answer: not retried
    assert sent and sent[0].text.startswith("■")
    snapshot = await _snapshot(db_harness)
    [(_id, _tg, blocked_at)] = snapshot["residents"]
    assert blocked_at is not None
    assert len(snapshot["logs"]) == 1  # the question is still logged
    assert db_harness.sleeps == []
    # Writing again clears the mark.
    await db_harness.text(HANAKO, "/menu")
    [(_id, _tg, blocked_at)] = (await _snapshot(db_harness))["residents"]
    assert blocked_at is None


async def test_blocking_and_unblocking_via_my_chat_member(db_harness: Harness) -> None:
    await db_harness.text(HANAKO, "/start")

    def member_update(status: str) -> dict[str, Any]:
        user = {"id": HANAKO, "is_bot": False, "first_name": "花子"}
        bot_user = {"id": 123456, "is_bot": True, "first_name": "まどぐち"}
        return {
            "my_chat_member": {
                "chat": {"id": HANAKO, "type": "private"},
                "from": user,
                "date": 1700000000,
                "old_chat_member": {"status": "member", "user": bot_user},
                "new_chat_member": (
                    {"status": "kicked", "user": bot_user, "until_date": 0}
                    if status == "kicked"
                    else {"status": "member", "user": bot_user}
                ),
            }
        }

    assert await db_harness.feed(member_update("kicked")) == []
    [(_id, _tg, blocked_at)] = (await _snapshot(db_harness))["residents"]
    assert blocked_at is not None
    await db_harness.feed(member_update("member"))
    [(_id, _tg, blocked_at)] = (await _snapshot(db_harness))["residents"]
    assert blocked_at is None


async def test_new_resident_is_created_once(db_harness: Harness) -> None:
    for _ in range(3):
        await db_harness.text(HANAKO, "/menu")
    async with db_harness.context.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Resident)) == 1
