"""ダッシュボード: the numbers a manager reads at a glance."""

from __future__ import annotations

from datetime import timedelta

from adminkit import START, Client

from classes.notice_queue import ReminderPolicy
from classes.service import create_class, sign_up
from classes.types import ClassDraft
from faq.inquiries import log_question, record_feedback
from faq.types import MatchStatus
from madoguchi.app import AppContext
from madoguchi.db import session_scope
from madoguchi.residents import get_or_create_resident


async def _ask(
    context: AppContext,
    text: str,
    outcome: MatchStatus,
    *,
    user: int,
    hours: float,
    faq_id: str | None = None,
) -> int:
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 660000 + user, now=START)
        return await log_question(
            db,
            resident_id=resident.id,
            channel="telegram",
            question=text,
            outcome=outcome,
            faq_id=faq_id,
            score=0.5,
            now=START - timedelta(hours=hours),
        )


async def test_dashboard_shows_questions_feedback_unanswered_and_classes(
    client: Client, context: AppContext
) -> None:
    for user in range(3):
        await _ask(
            context,
            "マイナンバーカードをなくした",
            "answered",
            user=user,
            hours=1,
            faq_id="mn-lost",
        )
    await _ask(context, "犬の登録", "fallback", user=5, hours=2)
    await _ask(context, "犬の登録？", "fallback", user=6, hours=30)
    thumbs = await _ask(context, "住民票", "suggested", user=7, hours=3, faq_id="juminhyo")
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 660007)
        await record_feedback(
            db,
            resident_id=resident.id,
            faq_id="juminhyo",
            helpful=False,
            question_log_id=thumbs,
            now=START - timedelta(hours=3),
        )
        klass = await create_class(
            db,
            ClassDraft(
                title="LINEの使い方教室",
                venue="公民館",
                starts_at=START + timedelta(days=3),
                ends_at=START + timedelta(days=3, hours=1),
                capacity=4,
                registration_deadline=START + timedelta(days=2),
            ),
            actor="tanaka",
            now=START,
        )
        resident = await get_or_create_resident(db, 660010)
        await sign_up(
            db,
            klass.id,
            resident.id,
            name="山田",
            phone=None,
            seats=1,
            now=START,
            policy=ReminderPolicy.from_settings(context.settings),
        )

    response = await client.get("/admin/dashboard")
    assert response.status == 200
    page = await response.text()
    assert "14日間" in page
    assert "質問 <strong>6件</strong>のうち、すぐに回答 <strong>50%</strong>" in page
    assert "👎 役に立たなかった <strong>1</strong>" in page
    assert "住民票の写しはどこで取れますか" in page  # the entry with a 👎
    assert "「犬の登録」" in page  # the top unanswered group (2 questions)
    assert "LINEの使い方教室" in page
    assert "1／4席" in page
    assert "25%" in page
    assert "<svg" in page
    assert "style=" not in page  # the CSP allows no inline styles

    week = await (await client.get("/admin/dashboard?days=7")).text()
    assert "7日間）の集計" in week
    odd = await client.get("/admin/dashboard?days=abc")
    assert odd.status == 200
    assert "14日間）の集計" in await odd.text()


async def test_admin_root_opens_the_dashboard(client: Client) -> None:
    response = await client.get("/admin/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/dashboard"


async def test_empty_dashboard(client: Client) -> None:
    page = await (await client.get("/admin/dashboard")).text()
    assert "質問 <strong>0件</strong>" in page
    assert "予定されている教室はありません" in page
