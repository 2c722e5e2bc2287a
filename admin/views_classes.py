"""スマホ教室: list, create, edit, move and cancel classes; registrations, waitlist and
attendance per class; the roster as CSV (Excel) and a print view.

The rules (capacity, waitlist promotion, rescheduled reminders, change and cancellation
notices) live in `classes.service`; this module turns forms into its calls, words its
`ClassRuleError` codes in Japanese and audits every change in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from aiohttp import web

from admin.audit import ACTION_LABELS, record
from admin.web import (
    actor,
    app_context,
    csv_download,
    form_data,
    form_text,
    now,
    render,
    see_other,
)
from classes.notice_queue import ReminderPolicy
from classes.roster import roster_csv, roster_filename, roster_order, status_label
from classes.service import (
    ClassRuleError,
    cancel_class,
    cancel_registration,
    create_class,
    get_class,
    get_registration,
    list_classes,
    list_registrations,
    mark_attended,
    update_class,
)
from classes.types import ClassDraft, ClassInfo, ClassStatus, RegistrationInfo, RegistrationStatus
from madoguchi.db import session_scope

CLASSES = "/admin/classes"
CLASS_ID = r"{class_id:\d{1,12}}"
REG_ID = r"{registration_id:\d{1,12}}"
MAX_ID = 2**31 - 1  # the tables' INTEGER keys: PostgreSQL refuses larger numbers outright

ACTION_LABELS.update(
    {
        "class.create": "スマホ教室を作成",
        "class.update": "スマホ教室を編集",
        "class.move": "スマホ教室の日時・会場を変更",
        "class.cancel": "スマホ教室を中止",
        "class.roster_export": "名簿をCSVで書き出し",
        "registration.attended": "出席を記録",
        "registration.not_attended": "出席の記録を取り消し",
        "registration.cancel": "申込を職員がキャンセル",
    }
)

RULE_MESSAGES = {
    "not_found": "この教室は見つかりません（削除された可能性があります）。",
    "invalid_title": "教室名を入力してください（200文字まで）。",
    "invalid_venue": "会場を入力してください（200文字まで）。",
    "invalid_description": "内容は5000文字以内にしてください。",
    "invalid_what_to_bring": "持ち物は5000文字以内にしてください。",
    "naive_datetime": "日時の形式が正しくありません。",
    "ends_before_start": "終了時刻は開始時刻より後にしてください。",
    "deadline_after_start": "申込締切は開始日時より前にしてください。",
    "starts_in_past": "開始日時が過ぎています。これからの日時を入れてください。",
    "invalid_capacity": "定員は1〜10000の数にしてください。",
    "invalid_max_seats": "1件で申し込める人数は1〜10にしてください。",
    "capacity_below_confirmed": "定員を、申込が確定している席数より少なくはできません。",
    "class_cancelled": "中止した教室は変更できません。",
    "class_finished": "終わった教室は中止できません。",
    "not_confirmed": "申込が確定していない方には出席をつけられません。",
}


def rule_message(error: ClassRuleError) -> str:
    return RULE_MESSAGES.get(error.code, "この操作はできませんでした。内容を確かめてください。")


# --- the form --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassForm:
    """The class form's fields as text (what the staff member typed, shown again on error)."""

    title: str = ""
    venue: str = ""
    day: str = ""  # YYYY-MM-DD, town zone
    start: str = ""  # HH:MM
    end: str = ""  # HH:MM
    capacity: str = "10"
    deadline: str = ""  # YYYY-MM-DDTHH:MM (datetime-local), town zone
    description: str = ""
    what_to_bring: str = ""
    max_seats: str = "2"
    waitlist: bool = True

    @classmethod
    def from_post(cls, form: Mapping[str, Any]) -> ClassForm:
        return cls(
            title=form_text(form, "title").strip(),
            venue=form_text(form, "venue").strip(),
            day=form_text(form, "day").strip(),
            start=form_text(form, "start").strip(),
            end=form_text(form, "end").strip(),
            capacity=form_text(form, "capacity").strip(),
            deadline=form_text(form, "deadline").strip(),
            description=form_text(form, "description"),
            what_to_bring=form_text(form, "what_to_bring"),
            max_seats=form_text(form, "max_seats").strip(),
            waitlist=form_text(form, "waitlist") == "1",
        )

    @classmethod
    def from_class(cls, klass: ClassInfo, tz: tzinfo) -> ClassForm:
        start = klass.starts_at.astimezone(tz)
        return cls(
            title=klass.title,
            venue=klass.venue,
            day=start.strftime("%Y-%m-%d"),
            start=start.strftime("%H:%M"),
            end=klass.ends_at.astimezone(tz).strftime("%H:%M"),
            capacity=str(klass.capacity),
            deadline=klass.registration_deadline.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
            description=klass.description,
            what_to_bring=klass.what_to_bring,
            max_seats=str(klass.max_seats_per_registration),
            waitlist=klass.waitlist_enabled,
        )

    @classmethod
    def blank(cls, today: date) -> ClassForm:
        """A new class: two weeks ahead, 14:00–15:30, sign-up until the day before 17:00."""
        day = today + timedelta(days=14)
        deadline = datetime.combine(day - timedelta(days=1), time(17, 0))
        return cls(
            title="スマホ教室",
            day=day.isoformat(),
            start="14:00",
            end="15:30",
            deadline=deadline.strftime("%Y-%m-%dT%H:%M"),
        )

    def to_draft(self, tz: tzinfo) -> tuple[ClassDraft | None, list[str]]:
        """The draft for the core, or Japanese messages for what could not be read."""
        errors: list[str] = []
        day = _parse(date.fromisoformat, self.day)
        start = _parse(time.fromisoformat, self.start)
        end = _parse(time.fromisoformat, self.end)
        deadline = _parse(datetime.fromisoformat, self.deadline)
        if day is None:
            errors.append("日付を入力してください（例：2025-04-10）。")
        if start is None or end is None:
            errors.append("開始と終了の時刻を入力してください（例：14:00）。")
        if deadline is None:
            errors.append("申込締切の日時を入力してください。")
        capacity = _parse(int, self.capacity)
        if capacity is None:
            errors.append("定員を数字で入力してください。")
        max_seats = _parse(int, self.max_seats)
        if max_seats is None:
            errors.append("1件で申し込める人数を数字で入力してください。")
        if errors:
            return None, errors
        assert day is not None and start is not None and end is not None
        assert deadline is not None and capacity is not None and max_seats is not None
        return (
            ClassDraft(
                title=self.title,
                venue=self.venue,
                starts_at=datetime.combine(day, start.replace(tzinfo=None), tzinfo=tz),
                ends_at=datetime.combine(day, end.replace(tzinfo=None), tzinfo=tz),
                capacity=capacity,
                registration_deadline=deadline.replace(tzinfo=tz),
                description=self.description,
                what_to_bring=self.what_to_bring,
                max_seats_per_registration=max_seats,
                waitlist_enabled=self.waitlist,
            ),
            [],
        )


def _render(
    request: web.Request, template_name: str, /, *, http_status: int = 200, **values: Any
) -> web.Response:
    """`render` plus `hm(datetime)`: the time of day in the town's zone (14:00)."""
    tz = app_context(request).settings.tzinfo

    def hm(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%H:%M")

    return render(request, template_name, http_status=http_status, hm=hm, **values)


def _parse(parse: Any, text: str) -> Any:
    try:
        return parse(text) if text else None
    except ValueError:
        return None


def _id(request: web.Request, name: str) -> int:
    """A numeric id of the path; an impossible one is a page that does not exist."""
    value = int(request.match_info[name])
    if value > MAX_ID:
        raise web.HTTPNotFound()
    return value


def _class_id(request: web.Request) -> int:
    return _id(request, "class_id")


def _policy(request: web.Request) -> ReminderPolicy:
    return ReminderPolicy.from_settings(app_context(request).settings)


async def _load(request: web.Request) -> ClassInfo:
    async with app_context(request).session_factory() as db:
        klass = await get_class(db, _class_id(request))
    if klass is None:
        raise web.HTTPNotFound()
    return klass


def _is_move(klass: ClassInfo, draft: ClassDraft) -> bool:
    return (
        klass.starts_at != draft.starts_at
        or klass.ends_at != draft.ends_at
        or klass.venue != draft.venue.strip()
    )


def _active_count(registrations: Sequence[RegistrationInfo]) -> int:
    return sum(
        1
        for reg in registrations
        if reg.status in (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)
    )


# --- list -------------------------------------------------------------------------------------


async def class_list(request: web.Request) -> web.StreamResponse:
    show_past = request.query.get("show") == "past"
    moment = now(request)
    async with app_context(request).session_factory() as db:
        if show_past:
            classes = [c for c in await list_classes(db, include_past=True) if c.ends_at <= moment]
            classes.reverse()  # the most recent first
        else:
            classes = await list_classes(db, now=moment)
    return _render(request, "classes/list.html", classes=classes, show_past=show_past)


# --- create -------------------------------------------------------------------------------------


async def new_form(request: web.Request) -> web.StreamResponse:
    today = now(request).astimezone(app_context(request).settings.tzinfo).date()
    return _render(request, "classes/form.html", form=ClassForm.blank(today), klass=None, errors=[])


async def create_submit(request: web.Request) -> web.StreamResponse:
    form = ClassForm.from_post(await form_data(request))
    draft, errors = form.to_draft(app_context(request).settings.tzinfo)
    if draft is not None:
        try:
            async with session_scope(app_context(request).session_factory) as db:
                klass = await create_class(db, draft, actor=actor(request), now=now(request))
                await record(
                    db,
                    actor(request),
                    "class.create",
                    "class",
                    klass.id,
                    {"capacity": klass.capacity},
                )
        except ClassRuleError as exc:
            errors = [rule_message(exc)]
        else:
            raise see_other(
                request, f"{CLASSES}/{klass.id}", notice=f"教室「{klass.title}」を作りました。"
            )
    return _render(
        request, "classes/form.html", http_status=400, form=form, klass=None, errors=errors
    )


# --- detail --------------------------------------------------------------------------------------


async def _detail_values(request: web.Request) -> dict[str, Any]:
    class_id = _class_id(request)
    async with app_context(request).session_factory() as db:
        klass = await get_class(db, class_id)
        if klass is None:
            raise web.HTTPNotFound()
        registrations = await list_registrations(db, class_id)
    ordered = roster_order(registrations)
    seated = (RegistrationStatus.CONFIRMED, RegistrationStatus.ATTENDED)
    return {
        "klass": klass,
        "confirmed": [r for r in ordered if r.status in seated],
        "waitlisted": [r for r in ordered if r.status == RegistrationStatus.WAITLISTED],
        "cancelled": [r for r in ordered if r.status == RegistrationStatus.CANCELLED],
        "attended_count": sum(1 for r in ordered if r.status == RegistrationStatus.ATTENDED),
        "status_label": status_label,
        "finished": klass.ends_at <= now(request),
        "is_cancelled": klass.status == ClassStatus.CANCELLED,
    }


async def class_detail(request: web.Request) -> web.StreamResponse:
    return _render(request, "classes/detail.html", **await _detail_values(request))


async def print_view(request: web.Request) -> web.StreamResponse:
    return _render(request, "classes/print.html", **await _detail_values(request))


async def roster_export(request: web.Request) -> web.StreamResponse:
    class_id = _class_id(request)
    tz = app_context(request).settings.tzinfo
    async with session_scope(app_context(request).session_factory) as db:
        klass = await get_class(db, class_id)
        if klass is None:
            raise web.HTTPNotFound()
        registrations = await list_registrations(db, class_id)
        await record(
            db,
            actor(request),
            "class.roster_export",
            "class",
            class_id,
            {"rows": len(registrations)},
        )
    return csv_download(roster_csv(registrations, tz), roster_filename(klass, tz))


# --- edit and move ------------------------------------------------------------------------------


async def edit_form(request: web.Request) -> web.StreamResponse:
    klass = await _load(request)
    if klass.status == ClassStatus.CANCELLED:
        raise see_other(request, f"{CLASSES}/{klass.id}", notice=RULE_MESSAGES["class_cancelled"])
    form = ClassForm.from_class(klass, app_context(request).settings.tzinfo)
    return _render(request, "classes/form.html", form=form, klass=klass, errors=[])


async def edit_submit(request: web.Request) -> web.StreamResponse:
    klass = await _load(request)
    posted = await form_data(request)
    form = ClassForm.from_post(posted)
    draft, errors = form.to_draft(app_context(request).settings.tzinfo)
    if draft is not None:
        moved = _is_move(klass, draft)
        async with app_context(request).session_factory() as db:
            affected = _active_count(await list_registrations(db, klass.id))
        if moved and affected and form_text(posted, "confirm_move") != "1":
            return _render(
                request,
                "classes/move_confirm.html",
                form=form,
                klass=klass,
                draft=draft,
                affected=affected,
            )
        try:
            async with session_scope(app_context(request).session_factory) as db:
                updated = await update_class(
                    db,
                    klass.id,
                    draft,
                    actor=actor(request),
                    now=now(request),
                    policy=_policy(request),
                )
                await record(
                    db,
                    actor(request),
                    "class.move" if moved else "class.update",
                    "class",
                    klass.id,
                    {
                        "schedule_version": updated.schedule_version,
                        "capacity": updated.capacity,
                        "notified_registrations": affected if moved else 0,
                    },
                )
        except ClassRuleError as exc:
            errors = [rule_message(exc)]
        else:
            notice = f"教室「{updated.title}」を保存しました。"
            if moved and affected:
                notice += f"申込者{affected}件に変更のお知らせを送ります。"
            raise see_other(request, f"{CLASSES}/{klass.id}", notice=notice)
    return _render(
        request, "classes/form.html", http_status=400, form=form, klass=klass, errors=errors
    )


# --- cancel the class --------------------------------------------------------------------------


async def cancel_confirm(request: web.Request) -> web.StreamResponse:
    klass = await _load(request)
    async with app_context(request).session_factory() as db:
        affected = _active_count(await list_registrations(db, klass.id))
    return _render(request, "classes/cancel_confirm.html", klass=klass, affected=affected)


async def cancel_submit(request: web.Request) -> web.StreamResponse:
    class_id = _class_id(request)
    try:
        async with session_scope(app_context(request).session_factory) as db:
            before = await get_class(db, class_id)
            if before is None:
                raise web.HTTPNotFound()
            affected = _active_count(await list_registrations(db, class_id))
            klass = await cancel_class(db, class_id, actor=actor(request), now=now(request))
            if before.status != ClassStatus.CANCELLED:
                await record(
                    db,
                    actor(request),
                    "class.cancel",
                    "class",
                    class_id,
                    {"notified_registrations": affected},
                )
    except ClassRuleError as exc:
        raise see_other(request, f"{CLASSES}/{class_id}", notice=rule_message(exc)) from exc
    raise see_other(
        request,
        f"{CLASSES}/{class_id}",
        notice=f"教室「{klass.title}」を中止しました。申込者{affected}件に中止のお知らせを送ります。",
    )


# --- registrations --------------------------------------------------------------------------------


async def _registration(request: web.Request) -> RegistrationInfo:
    class_id = _class_id(request)
    async with app_context(request).session_factory() as db:
        registration = await get_registration(db, _id(request, "registration_id"))
    if registration is None or registration.class_id != class_id:
        raise web.HTTPNotFound()
    return registration


async def attendance_submit(request: web.Request) -> web.StreamResponse:
    registration = await _registration(request)
    attended = form_text(await form_data(request), "attended") == "1"
    back = f"{CLASSES}/{registration.class_id}#reg-{registration.id}"
    try:
        async with session_scope(app_context(request).session_factory) as db:
            await mark_attended(db, registration.id, attended=attended, now=now(request))
            await record(
                db,
                actor(request),
                "registration.attended" if attended else "registration.not_attended",
                "class_registration",
                registration.id,
                {"class_id": registration.class_id},
            )
    except ClassRuleError as exc:
        raise see_other(request, back, notice=rule_message(exc)) from exc
    word = "出席" if attended else "未出席"
    raise see_other(request, back, notice=f"受付番号{registration.id}を「{word}」にしました。")


async def registration_cancel_confirm(request: web.Request) -> web.StreamResponse:
    registration = await _registration(request)
    klass = await _load(request)
    return _render(
        request,
        "classes/registration_cancel.html",
        klass=klass,
        registration=registration,
        status_label=status_label,
    )


async def registration_cancel_submit(request: web.Request) -> web.StreamResponse:
    registration = await _registration(request)
    async with session_scope(app_context(request).session_factory) as db:
        result = await cancel_registration(
            db,
            registration.id,
            resident_id=None,
            now=now(request),
            policy=_policy(request),
            by="staff",
        )
        if result.cancelled is not None:
            await record(
                db,
                actor(request),
                "registration.cancel",
                "class_registration",
                registration.id,
                {"class_id": registration.class_id, "promoted": len(result.promoted)},
            )
    back = f"{CLASSES}/{registration.class_id}"
    if result.cancelled is None:
        raise see_other(request, back, notice="この申込はすでにキャンセルされています。")
    notice = f"受付番号{registration.id}の申込をキャンセルしました。"
    if result.promoted:
        numbers = "、".join(str(reg.id) for reg in result.promoted)
        notice += f"キャンセル待ちの受付番号{numbers}が確定になり、お知らせを送ります。"
    raise see_other(request, back, notice=notice)


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/classes")(class_list)
    routes.get("/classes/new")(new_form)
    routes.post("/classes/new")(create_submit)
    routes.get(f"/classes/{CLASS_ID}")(class_detail)
    routes.get(f"/classes/{CLASS_ID}/edit")(edit_form)
    routes.post(f"/classes/{CLASS_ID}/edit")(edit_submit)
    routes.get(f"/classes/{CLASS_ID}/cancel")(cancel_confirm)
    routes.post(f"/classes/{CLASS_ID}/cancel")(cancel_submit)
    routes.get(f"/classes/{CLASS_ID}/print")(print_view)
    routes.get(f"/classes/{CLASS_ID}/roster.csv")(roster_export)
    routes.post(f"/classes/{CLASS_ID}/registrations/{REG_ID}/attendance")(attendance_submit)
    routes.get(f"/classes/{CLASS_ID}/registrations/{REG_ID}/cancel")(registration_cancel_confirm)
    routes.post(f"/classes/{CLASS_ID}/registrations/{REG_ID}/cancel")(registration_cancel_submit)
