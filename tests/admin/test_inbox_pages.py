"""未回答・👎 pages: the grouped list and its three actions, through the aiohttp test client."""

from __future__ import annotations

import re
from datetime import timedelta

from adminkit import START, Client, post_form
from sqlalchemy import select

from admin.audit import list_records
from faq.inbox import list_inbox
from faq.inquiries import log_question, record_feedback
from faq.inquiry_models import QuestionLog
from faq.store import get_entry
from faq.types import MatchStatus
from madoguchi.app import AppContext
from madoguchi.db import session_scope
from madoguchi.residents import get_or_create_resident

DOG = "犬の登録はどこでできますか"
DOG_2 = "犬の登録はどこでできますか？"


async def _ask(
    context: AppContext,
    text: str,
    *,
    user: int,
    minutes: int,
    outcome: MatchStatus = "fallback",
    faq_id: str | None = None,
) -> int:
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 880000 + user, now=START)
        return await log_question(
            db,
            resident_id=resident.id,
            channel="telegram",
            question=text,
            outcome=outcome,
            faq_id=faq_id,
            score=0.2,
            now=START - timedelta(minutes=minutes),
        )


async def _thumbs_down(context: AppContext, text: str, faq_id: str, *, user: int) -> int:
    log_id = await _ask(context, text, user=user, minutes=1, outcome="answered", faq_id=faq_id)
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 880000 + user)
        await record_feedback(
            db,
            resident_id=resident.id,
            faq_id=faq_id,
            helpful=False,
            question_log_id=log_id,
            now=START,
        )
    return log_id


async def _status(context: AppContext, *ids: int) -> list[str]:
    async with context.session_factory() as db:
        rows = await db.execute(
            select(QuestionLog.id, QuestionLog.staff_status).where(QuestionLog.id.in_(ids))
        )
        found = dict(rows.tuples().all())
    return [found[i] for i in ids]


def _logs_param(page: str, action: str) -> str:
    match = re.search(rf'href="/admin/inbox/{action}\?logs=([0-9,]+)"', page)
    assert match, page
    return match.group(1)


async def test_inbox_lists_groups_without_resident_ids(client: Client, context: AppContext) -> None:
    await _ask(context, DOG, user=1, minutes=30)
    await _ask(context, DOG_2, user=2, minutes=10)
    await _ask(context, "電話 090-1234-5678 に折り返して", user=3, minutes=20)
    await _thumbs_down(context, "粗大ごみの日", "gomi-sodai", user=4)

    response = await client.get("/admin/inbox")
    page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert f"「{DOG_2}」" in page  # the newest question of the group represents it
    assert "2件" in page
    assert "👎 役に立たなかった" in page
    assert "粗大ごみはどうやって出しますか" in page  # the entry that got the 👎
    assert "1234-5678" not in page  # masked when logged
    assert "88000" not in page  # no Telegram ids (nor resident ids) on the page
    assert page.count("新しいFAQを作る") == 3
    assert page.count('name="csrf_token"') >= 3

    only_thumbs = await (await client.get("/admin/inbox?kind=unhelpful")).text()
    assert "粗大ごみの日" in only_thumbs
    assert DOG not in only_thumbs


async def test_create_a_new_entry_from_a_group(client: Client, context: AppContext) -> None:
    first = await _ask(context, DOG, user=1, minutes=30)
    second = await _ask(context, DOG_2, user=2, minutes=10)
    assert context.faq_engine.match(DOG).status == "fallback"
    page = await (await client.get("/admin/inbox")).text()
    logs = _logs_param(page, "new")
    assert sorted(int(x) for x in logs.split(",")) == sorted([first, second])

    form_page = await (await client.get(f"/admin/inbox/new?logs={logs}")).text()
    assert f'value="{DOG_2}"' in form_page  # prefilled question
    assert DOG in form_page  # the other phrasing, as an alternative

    # A broken form is shown again with the reason, in Japanese; nothing is closed.
    bad = await post_form(
        client,
        "/admin/inbox/new",
        {"logs": logs, "id": "dog-register", "question": DOG, "answer": ""},
    )
    assert bad.status == 400
    assert "応答文が空です" in await bad.text()
    assert await _status(context, first, second) == ["open", "open"]

    response = await post_form(
        client,
        "/admin/inbox/new",
        {
            "logs": logs,
            "id": "dog-register",
            "question": DOG,
            "answer": "犬の登録は役場の環境係で受け付けています。",
            "alternatives": DOG_2,
            "category": "くらし",
            "published": "1",
        },
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/inbox"
    assert await _status(context, first, second) == ["converted", "converted"]
    async with context.session_factory() as db:
        entry = await get_entry(db, "dog-register")
        records = await list_records(db, target_type="faq", target_id="dog-register")
        assert await list_inbox(db) == []
    assert entry is not None
    assert entry.updated_by == "tanaka"
    assert [r.action for r in records] == ["inbox.create"]
    assert records[0].actor == "tanaka"
    # The bot's engine knows the new entry at once.
    best = context.faq_engine.match(DOG).best
    assert best is not None
    assert best.faq_id == "dog-register"

    # The notice shows once on the next page.
    after = await (await client.get("/admin/inbox")).text()
    assert "dog-register" in after
    assert "対応を待っている質問はありません" in after


async def test_create_with_a_taken_id_is_refused(client: Client, context: AppContext) -> None:
    log_id = await _ask(context, DOG, user=1, minutes=1)
    response = await post_form(
        client,
        "/admin/inbox/new",
        {"logs": str(log_id), "id": "mn-lost", "question": DOG, "answer": "答え"},
    )
    assert response.status == 409
    assert "すでに使われています" in await response.text()
    assert await _status(context, log_id) == ["open"]


async def test_add_as_alternative_of_an_existing_entry(client: Client, context: AppContext) -> None:
    question = "マイナのカードをどこかに落としてしまった"
    log_id = await _ask(context, question, user=1, minutes=5)
    page = await (await client.get(f"/admin/inbox/alternative?logs={log_id}")).text()
    assert 'value="mn-lost@1"' in page  # the engine's best candidate is offered first
    search = await (await client.get(f"/admin/inbox/alternative?logs={log_id}&q=住民票")).text()
    assert 'value="juminhyo@1"' in search
    assert 'value="mn-lost@1"' not in search

    missing = await post_form(
        client, "/admin/inbox/alternative", {"logs": str(log_id), "phrasing": question}
    )
    assert missing.status == 400
    assert "FAQを選んでください" in await missing.text()

    response = await post_form(
        client,
        "/admin/inbox/alternative",
        {"logs": str(log_id), "phrasing": question, "entry": "mn-lost@1"},
    )
    assert response.status == 303
    async with context.session_factory() as db:
        entry = await get_entry(db, "mn-lost")
        records = await list_records(db, target_type="faq", target_id="mn-lost")
    assert entry is not None
    assert question in entry.alternatives
    assert entry.revision == 2
    assert [r.action for r in records] == ["inbox.alternative"]
    assert await _status(context, log_id) == ["converted"]
    best = context.faq_engine.match(question).best
    assert best is not None
    assert best.faq_id == "mn-lost"


async def test_add_as_alternative_with_a_stale_revision_is_refused(
    client: Client, context: AppContext
) -> None:
    log_id = await _ask(context, "マイナカードを落とした", user=1, minutes=5)
    response = await post_form(
        client,
        "/admin/inbox/alternative",
        {"logs": str(log_id), "phrasing": "カード落とした", "entry": "mn-lost@7"},
    )
    assert response.status == 409
    assert "ほかの方が先に更新しました" in await response.text()
    assert await _status(context, log_id) == ["open"]


async def test_dismiss_is_one_click_and_audited(client: Client, context: AppContext) -> None:
    first = await _ask(context, DOG, user=1, minutes=30)
    second = await _ask(context, DOG_2, user=2, minutes=10)
    response = await post_form(
        client, "/admin/inbox/dismiss", {"logs": f"{first},{second}", "kind": "unanswered"}
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/inbox?kind=unanswered"
    assert await _status(context, first, second) == ["dismissed", "dismissed"]
    async with context.session_factory() as db:
        (entry,) = await list_records(db, target_type="question_log")
    assert entry.action == "inbox.dismiss"
    assert entry.detail == {"question_logs": 2, "closed": 2}


async def test_inbox_posts_need_the_csrf_token(client: Client, context: AppContext) -> None:
    log_id = await _ask(context, DOG, user=1, minutes=1)
    response = await client.post(
        "/admin/inbox/dismiss", data={"logs": str(log_id)}, allow_redirects=False
    )
    assert response.status == 403
    assert await _status(context, log_id) == ["open"]


async def test_inbox_needs_login(anonymous: Client) -> None:
    response = await anonymous.get("/admin/inbox", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/admin/login")


async def test_forms_for_handled_questions_send_back_to_the_list(
    client: Client, context: AppContext
) -> None:
    log_id = await _ask(context, DOG, user=1, minutes=1)
    await post_form(client, "/admin/inbox/dismiss", {"logs": str(log_id)})
    for action in ("new", "alternative"):
        response = await client.get(f"/admin/inbox/{action}?logs={log_id}", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/admin/inbox"
