"""Every resident-facing text of the smartphone classes (スマホ教室), in one place.

Same voice as bot/messages.py: short です/ます sentences, one step per message, the next step
always a button. Dates as `12月3日（水）14:00〜15:30` in the town's zone. Phone numbers are
shown back only on the resident's own confirmation screen, never anywhere else.
The reminder and notice texts (REMIND) follow in their own section at the end.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from classes.types import ClassInfo, RegistrationInfo, RegistrationStatus, SignUpRefusal
from madoguchi.settings import TownInfo

WEEKDAYS = "月火水木金土日"
NAME_MAX = 100
SAMPLE_LABEL = "（サンプル）"
# A class button names the class (phones cut long buttons): its day, start and title.
TITLE_IN_BUTTON_MAX = 16

# --- buttons --------------------------------------------------------------------------------

BUTTON_MY_REGISTRATIONS = "予約の確認"
BUTTON_APPLY = "申し込む"
BUTTON_BACK = "戻る"
BUTTON_MENU = "メニューに戻る"  # the same label as bot.messages.BUTTON_MENU
BUTTON_BACK_TO_CLASSES = "教室の一覧に戻る"
BUTTON_BACK_TO_CLASS = "教室の案内に戻る"
BUTTON_USE_NAME = "この名前で申し込む"
BUTTON_SEND_PHONE = "電話番号を送る"
BUTTON_NO_PHONE = "電話番号なしで進む"
BUTTON_CANCEL = "キャンセルする"
BUTTON_CANCEL_YES = "はい、キャンセルします"
BUTTON_CANCEL_NO = "いいえ、キャンセルしません"
BUTTON_CALENDAR = "カレンダーに追加"
# Labels of the reply keyboard of the phone step: typed text with these labels is a tap.
PHONE_STEP_LABELS = (BUTTON_SEND_PHONE, BUTTON_NO_PHONE, BUTTON_BACK, BUTTON_MENU)
PHONE_PLACEHOLDER = "電話番号（例：090-1234-5678）"

# --- dates ----------------------------------------------------------------------------------


def day(value: datetime, zone: ZoneInfo) -> str:
    """`12月3日（水）` in the town's zone."""
    local = value.astimezone(zone)
    return f"{local.month}月{local.day}日（{WEEKDAYS[local.weekday()]}）"


def clock(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return f"{local.hour}:{local.minute:02d}"


def when(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> str:
    """`12月3日（水）14:00〜15:30` (the end's date too when it is another day)."""
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    end_text = (
        clock(end, zone) if end.date() == start.date() else f"{day(end, zone)}{clock(end, zone)}"
    )
    return f"{day(start, zone)}{clock(start, zone)}〜{end_text}"


def moment(value: datetime, zone: ZoneInfo) -> str:
    """`12月1日（月）17:00`."""
    return f"{day(value, zone)}{clock(value, zone)}"


# --- the list of classes ----------------------------------------------------------------------


def title(klass: ClassInfo) -> str:
    """The class title, marked when it is a sample class of the local demo."""
    if klass.is_sample and "サンプル" not in klass.title:
        return klass.title + SAMPLE_LABEL
    return klass.title


def seats_status(klass: ClassInfo, now: datetime) -> str:
    """残り3席 / 満席・キャンセル待ちできます / 満席 / 受付は終わりました."""
    if now > klass.registration_deadline or now >= klass.starts_at:
        return "受付は終わりました"
    if klass.seats_left > 0:
        return f"残り{klass.seats_left}席"
    if klass.waitlist_enabled:
        return "満席・キャンセル待ちできます"
    return "満席"


def class_button(klass: ClassInfo, now: datetime, zone: ZoneInfo) -> str:
    """`12月3日（水）14:00 はじめてのスマホ 残り3席`; a sample keeps its 【サンプル】 mark."""
    name = title(klass)
    if len(name) > TITLE_IN_BUTTON_MAX:
        name = name[: TITLE_IN_BUTTON_MAX - 1] + "…"
    return f"{moment(klass.starts_at, zone)} {name} {seats_status(klass, now)}"


def class_list(classes: list[ClassInfo], now: datetime, zone: ZoneInfo) -> str:
    blocks = [
        f"■ {title(klass)}\n"
        f"{when(klass.starts_at, klass.ends_at, zone)}\n"
        f"場所：{klass.venue}\n"
        f"{seats_status(klass, now)}"
        for klass in classes
    ]
    return "スマホ教室の予定です。\n申し込みたい教室のボタンを押してください。\n\n" + "\n\n".join(
        blocks
    )


def no_classes(town: TownInfo) -> str:
    return (
        "もうすぐ開かれるスマホ教室は、いまはありません。\n"
        f"次の予定は、{town.class_contact}にお問い合わせください。\n"
        f"電話：{town.counter_phone}（{town.counter_hours}）"
    )


# --- one class --------------------------------------------------------------------------------


def class_details(klass: ClassInfo, now: datetime, zone: ZoneInfo) -> str:
    lines = [f"■ {title(klass)}"]
    if klass.description.strip():
        lines.append(klass.description.strip())
    lines.append("")
    lines.append(f"日時：{when(klass.starts_at, klass.ends_at, zone)}")
    lines.append(f"場所：{klass.venue}")
    if klass.what_to_bring.strip():
        lines.append(f"持ち物：{klass.what_to_bring.strip()}")
    lines.append(f"定員：{klass.capacity}人（{seats_status(klass, now)}）")
    lines.append(f"申し込みの締め切り：{moment(klass.registration_deadline, zone)}")
    if klass.is_sample:
        lines.append("")
        lines.append("※ 体験版のためのサンプルの教室です。実際には開かれません。")
    return "\n".join(lines)


def refusal_text(
    refusal: SignUpRefusal, klass: ClassInfo | None, zone: ZoneInfo, town: TownInfo
) -> str:
    """Why a sign-up cannot be taken, politely, with the way to ask a person."""
    ask = f"ご不明な点は、{town.class_contact}にお電話ください。\n電話：{town.counter_phone}"
    if refusal is SignUpRefusal.CANCELLED:
        return f"申し訳ありません。この教室は中止になりました。\n{ask}"
    if refusal is SignUpRefusal.PAST:
        return "申し訳ありません。この教室は、もう始まっているか、終わっています。\n教室の一覧から、ほかの教室をお選びください。"
    if refusal is SignUpRefusal.DEADLINE_PASSED:
        deadline = f"（締め切り：{moment(klass.registration_deadline, zone)}）\n" if klass else ""
        return f"申し訳ありません。この教室の申し込みは締め切りました。\n{deadline}{ask}"
    if refusal is SignUpRefusal.FULL:
        return f"申し訳ありません。この教室は満席です。キャンセル待ちも受け付けていません。\n{ask}"
    if refusal is SignUpRefusal.TOO_MANY_SEATS:
        most = klass.max_seats_per_registration if klass else 1
        return f"1回のお申し込みは{most}人までです。人数を選び直してください。"
    if refusal in (SignUpRefusal.INVALID_NAME, SignUpRefusal.INVALID_PHONE):
        return "お名前か電話番号を読み取れませんでした。\nお手数ですが、はじめからもう一度お申し込みください。"
    return CLASS_NOT_FOUND


CLASS_NOT_FOUND = "この教室は見つかりませんでした。\n教室の一覧から選び直してください。"

# --- the sign-up flow -------------------------------------------------------------------------


def name_prompt(suggested: str | None) -> str:
    if suggested:
        return (
            "お申し込みのお名前を教えてください。\n"
            f"「{suggested}」でよろしければ、「{BUTTON_USE_NAME}」を押してください。\n"
            "ちがうお名前のときは、お名前を文字で送ってください。"
        )
    return "お申し込みのお名前を、文字で送ってください。"


NAME_EMPTY = "お名前を文字で送ってください。"
NAME_TOO_LONG = f"お名前は{NAME_MAX}文字までで送ってください。"

PHONE_PROMPT = (
    "電話番号を教えてください（なくても申し込めます）。\n"
    "教室の変更や中止のとき、町からご連絡するためだけに使います。\n"
    f"下の「{BUTTON_SEND_PHONE}」を押すか、数字で送ってください。\n"
    f"登録しないときは「{BUTTON_NO_PHONE}」を押してください。"
)
PHONE_INVALID = (
    "電話番号として読み取れませんでした。\n"
    "数字で送ってください。例：090-1234-5678\n"
    f"登録しないときは「{BUTTON_NO_PHONE}」を押してください。"
)
PHONE_NOT_OWN = (
    "ご本人の電話番号だけ受け付けています。\n"
    f"「{BUTTON_SEND_PHONE}」を押すか、数字で送ってください。"
)
# The share-contact button came back as plain text (the demo chat, very old clients).
PHONE_BUTTON_UNAVAILABLE = (
    "この画面では、ボタンで電話番号を送れません。\n"
    f"数字で送るか、「{BUTTON_NO_PHONE}」を押してください。"
)
BACK_TO_NAME = "お名前の入力に戻ります。"
PHONE_SAVED = "電話番号を受け付けました。"
PHONE_SKIPPED = "電話番号は登録しません。"


def seats_prompt(klass: ClassInfo) -> str:
    lines = [
        "何人で参加しますか？",
        "ご家族が付き添うときは、付き添いの方の席も1席として数えます。",
        "ご本人と付き添いの方1人なら「2人」を選んでください。",
    ]
    if 0 < klass.seats_left < klass.max_seats_per_registration:
        lines.append(
            f"いま空いている席は{klass.seats_left}席です。"
            "それより多い人数では、キャンセル待ちになります。"
        )
    return "\n".join(lines)


def seats_button(seats: int) -> str:
    if seats == 1:
        return "1人（ご本人だけ）"
    if seats == 2:
        return "2人（付き添いのご家族と）"
    return f"{seats}人"


# 持ち物 may be long (staff may enter 5,000 characters); the summary is part of messages that
# must fit in one Telegram message (4,096 characters), so it shows the start of it. The class
# page (split into several messages when needed) shows all of it.
WHAT_TO_BRING_IN_SUMMARY_MAX = 300
WHAT_TO_BRING_CUT = "…（くわしくは教室の案内をご覧ください）"


def _what_to_bring(klass: ClassInfo) -> str:
    text = klass.what_to_bring.strip()
    if len(text) > WHAT_TO_BRING_IN_SUMMARY_MAX:
        return text[:WHAT_TO_BRING_IN_SUMMARY_MAX].rstrip() + WHAT_TO_BRING_CUT
    return text


def _summary(klass: ClassInfo, zone: ZoneInfo, seats: int) -> list[str]:
    lines = [
        f"■ {title(klass)}",
        f"日時：{when(klass.starts_at, klass.ends_at, zone)}",
        f"場所：{klass.venue}",
    ]
    if klass.what_to_bring.strip():
        lines.append(f"持ち物：{_what_to_bring(klass)}")
    lines.append(f"人数：{seats}人")
    return lines


def confirmation(
    klass: ClassInfo,
    zone: ZoneInfo,
    *,
    name: str,
    phone: str | None,
    seats: int,
    waitlist_expected: bool,
) -> str:
    lines = [
        "この内容で申し込みます。",
        f"よろしければ「{BUTTON_APPLY}」を押してください。",
        "",
        *_summary(klass, zone, seats),
        f"お名前：{name}",
        f"電話番号：{phone or 'なし'}",
    ]
    if waitlist_expected:
        lines += [
            "",
            "いまは席が足りないため、キャンセル待ちでの受付になります。",
            "席が空いたら、申し込み順に自動で確定し、このチャットでお知らせします。",
        ]
    return "\n".join(lines)


def signed_up(
    klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo, *, reminded: bool
) -> str:
    """The done screen: 「申し込みが完了しました」 or 「キャンセル待ちで受け付けました（n番目）」."""
    if registration.status is RegistrationStatus.WAITLISTED:
        lines = [
            f"キャンセル待ちで受け付けました（{registration.waitlist_position or 1}番目）。",
            "席が空いたら、申し込み順に自動で確定し、このチャットでお知らせします。",
        ]
    else:
        lines = ["申し込みが完了しました。", "当日、会場でお待ちしています。"]
        if reminded:
            lines.append("教室の前にも、このチャットでお知らせします。")
    lines += ["", *_summary(klass, zone, registration.seats), ""]
    lines.append(f"キャンセルするときは、「{BUTTON_MY_REGISTRATIONS}」からできます。")
    return "\n".join(lines)


def already_registered(klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo) -> str:
    return "\n".join(
        [
            "この教室は、もう申し込み済みです。",
            "",
            *_summary(klass, zone, registration.seats),
            f"状態：{registration_state(registration)}",
        ]
    )


ICS_CAPTION = (
    "カレンダーに予定を入れるためのファイルです。\n"
    "ファイルを開くと、スマホのカレンダーに追加できます。"
)
ICS_NOT_CONFIRMED = "カレンダーのファイルは、席が確定したお申し込みだけお送りしています。"

FLOW_EXPIRED = (
    "時間がたったため、お申し込みはまだ完了していません。\n"
    "お手数ですが、はじめからもう一度お願いします。"
)
FLOW_MOVED_ON = "このボタンは使えなくなりました。\nいちばん新しいメッセージから続けてください。"

# --- 予約の確認 ---------------------------------------------------------------------------------


def registration_state(registration: RegistrationInfo) -> str:
    if registration.status is RegistrationStatus.WAITLISTED:
        return f"キャンセル待ち（{registration.waitlist_position or 1}番目）"
    if registration.status is RegistrationStatus.CANCELLED:
        return "キャンセル済み"
    if registration.status is RegistrationStatus.ATTENDED:
        return "参加済み"
    return "申し込み済み（席が確保されています）"


def registration_block(klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo) -> str:
    return "\n".join(
        [*_summary(klass, zone, registration.seats), f"状態：{registration_state(registration)}"]
    )


def my_registrations(blocks: list[str]) -> str:
    return "お申し込みの一覧です。\n\n" + "\n\n".join(blocks)


NO_REGISTRATIONS = "いま、スマホ教室のお申し込みはありません。"


def cancel_button(klass: ClassInfo, zone: ZoneInfo) -> str:
    return f"{BUTTON_CANCEL}：{day(klass.starts_at, zone)}"


def calendar_button(klass: ClassInfo, zone: ZoneInfo) -> str:
    return f"{BUTTON_CALENDAR}：{day(klass.starts_at, zone)}"


def confirm_cancel(klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo) -> str:
    return "本当にキャンセルしますか？\n\n" + registration_block(klass, registration, zone)


def cancelled(klass: ClassInfo, zone: ZoneInfo) -> str:
    return (
        "キャンセルしました。\n"
        f"■ {title(klass)}（{when(klass.starts_at, klass.ends_at, zone)}）\n"
        "またのお申し込みをお待ちしています。"
    )


ALREADY_CANCELLED = "このお申し込みは、もうキャンセルされています。"
CLASS_OVER = "この教室は、もう終わっています。\nキャンセルの手続きはいりません。"
NOT_CANCELLED = "キャンセルしませんでした。お申し込みはそのままです。"


# --- Reminders and notices (classes) ---
# Sent by bot.notifier on its own (not as an answer), so each one says which class it is
# about, what to do, and how to cancel; the buttons under it lead to 予約の確認 and the menu
# (to スマホ教室 and the menu when there is no registration left to check: a cancelled class,
# a waitlist that closed when the class started).

NOTICE_CLASSES_BUTTON = "スマホ教室"  # the main-menu button (bot.messages.BUTTON_CLASSES)


def _how_to_cancel() -> str:
    return (
        "行けなくなったときは、メニューの"
        f"「{NOTICE_CLASSES_BUTTON}」→「{BUTTON_MY_REGISTRATIONS}」からキャンセルできます。"
    )


def reminder_day_before(
    klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo, now: datetime | None = None
) -> str:
    """`now` is when it is sent: a reminder sent late (the process was down) on the class day
    itself says 「本日」, not 「明日」."""
    class_day = klass.starts_at.astimezone(zone).date()
    today = now.astimezone(zone).date() if now is not None else None
    if today is None or today < class_day:
        opening = f"明日 {day(klass.starts_at, zone)} は、スマホ教室の日です。"
    else:
        opening = f"本日 {day(klass.starts_at, zone)} は、スマホ教室の日です。"
    return "\n".join(
        [
            opening,
            "",
            *_summary(klass, zone, registration.seats),
            "",
            "お気をつけてお越しください。",
            _how_to_cancel(),
        ]
    )


def reminder_hours_before(klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo) -> str:
    return "\n".join(
        [
            f"{moment(klass.starts_at, zone)}から、スマホ教室が始まります。",
            "",
            *_summary(klass, zone, registration.seats),
            "",
            "会場でお待ちしています。",
            _how_to_cancel(),
        ]
    )


def promoted_notice(klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo) -> str:
    return "\n".join(
        [
            "キャンセル待ちの席が空きました。",
            "お申し込みが確定しました。",
            "",
            *_summary(klass, zone, registration.seats),
            "",
            "当日、会場でお待ちしています。",
            _how_to_cancel(),
        ]
    )


def class_changed_notice(klass: ClassInfo, registration: RegistrationInfo, zone: ZoneInfo) -> str:
    lines = [
        "お申し込みのスマホ教室の日時か場所が変わりました。",
        "新しい予定をご確認ください。",
        "",
        *_summary(klass, zone, registration.seats),
        f"状態：{registration_state(registration)}",
        "",
        "ご都合が合わないときは、お手数ですがキャンセルをお願いします。",
        _how_to_cancel(),
    ]
    return "\n".join(lines)


def class_cancelled_notice(klass: ClassInfo, zone: ZoneInfo, town: TownInfo | None = None) -> str:
    lines = [
        "申し訳ありません。お申し込みのスマホ教室は中止になりました。",
        "",
        f"■ {title(klass)}",
        f"日時：{when(klass.starts_at, klass.ends_at, zone)}",
        f"場所：{klass.venue}",
        "",
        "お申し込みは取り消しました。お手続きはいりません。",
        f"ほかの教室は、メニューの「{NOTICE_CLASSES_BUTTON}」からご覧いただけます。",
    ]
    lines.extend(_contact_lines(town))
    return "\n".join(lines)


def _contact_lines(town: TownInfo | None) -> list[str]:
    """Whom to call with a question (nothing when the town details are not known here)."""
    if town is None:
        return []
    return [f"ご不明な点は、{town.class_contact}にお電話ください。電話：{town.counter_phone}"]


def waitlist_closed_notice(klass: ClassInfo, zone: ZoneInfo, town: TownInfo | None = None) -> str:
    """The class has started and the resident was still on the waitlist: no seat came free.

    Nothing for the resident to do; the next step is another class (the button under it)."""
    lines = [
        "キャンセル待ちのまま、教室の日になりました。",
        "今回は席が空きませんでした。申し訳ありません。",
        "",
        f"■ {title(klass)}",
        f"日時：{when(klass.starts_at, klass.ends_at, zone)}",
        f"場所：{klass.venue}",
        "",
        "お手続きはいりません。",
        f"ほかの教室は、メニューの「{NOTICE_CLASSES_BUTTON}」からご覧いただけます。",
        *_contact_lines(town),
    ]
    return "\n".join(lines)
