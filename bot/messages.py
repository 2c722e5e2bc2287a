"""Every text the bot shows a resident, in one place.

Plain Japanese for residents who are new to smartphones: short です/ます sentences, one step
per message, the next step always a button. Town details come from settings (TownInfo), never
literals. No English and no error details ever reach a resident.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from madoguchi.settings import TownInfo

TELEGRAM_TEXT_LIMIT = 4096
CONTINUED = "（続きます）"
BUTTON_TEXT_MAX = 60

# --- buttons --------------------------------------------------------------------------------

BUTTON_ASK = "質問する"
BUTTON_CATEGORIES = "カテゴリから探す"
BUTTON_CLASSES = "スマホ教室"
BUTTON_CONTACT = "窓口・電話"
MENU_BUTTONS = (BUTTON_ASK, BUTTON_CATEGORIES, BUTTON_CLASSES, BUTTON_CONTACT)
MENU_PLACEHOLDER = "ご質問を入力するか、ボタンを押してください"

BUTTON_HELPFUL = "👍 役に立った"
BUTTON_NOT_HELPFUL = "👎 役に立たなかった"
BUTTON_MENU = "メニューに戻る"
BUTTON_NONE_OF_THESE = "どれでもない"
BUTTON_LEAVE_FOR_STAFF = "職員に質問を伝える"
BUTTON_BACK_TO_CATEGORIES = "カテゴリ一覧に戻る"
BUTTON_BACK_TO_LIST = "質問の一覧に戻る"
BUTTON_NEXT = "次へ ▶"
BUTTON_PREVIOUS = "◀ 前へ"
BUTTON_CONTACT_INLINE = "窓口・電話を見る"
BUTTON_DELETE_ALL = "すべて削除する"
BUTTON_DELETE_YES = "はい、削除します"
BUTTON_DELETE_NO = "いいえ"

# --- menu, help -----------------------------------------------------------------------------


def greeting(town: TownInfo) -> str:
    return (
        f"こんにちは。{town.town_name}の「まどぐち」です。\n"
        "マイナンバーカードやスマホのことで、よくある質問にお答えします。\n"
        "下のボタンを押して、選んでください。"
    )


MENU = "メニューです。\n下のボタンを押して、選んでください。"


def help_text(town: TownInfo) -> str:
    return (
        "使い方です。\n"
        "・「質問する」：ご質問を文字で送ると、お答えします。\n"
        "・「カテゴリから探す」：ボタンを押すだけで、質問を探せます。\n"
        "・「スマホ教室」：スマホ教室のご案内です。\n"
        "・「窓口・電話」：役場の窓口と電話番号です。\n"
        "・/mydata：記録している情報を見たり、削除したりできます。\n"
        f"分からないときは、お電話ください。電話：{town.counter_phone}"
    )


ASK_PROMPT = (
    "ご質問を文字で送ってください。\n"
    "例：「マイナンバーカードの暗証番号を忘れました」\n"
    "キーボードのマイクのボタンを押すと、話して入力することもできます。"
)


def contact_text(town: TownInfo) -> str:
    return (
        f"{town.counter_name}\n"
        f"電話：{town.counter_phone}\n"
        f"受付：{town.counter_hours}\n"
        f"場所：{town.counter_place}\n"
        "職員がお答えします。お気軽にどうぞ。"
    )


UNKNOWN_COMMAND = "そのコマンドは使えません。\n下のメニューから選んでください。"

NOT_TEXT = (
    "申し訳ありません。このボットは、文字のメッセージとボタンだけを読めます。\n"
    "ご質問は文字で送ってください。下のメニューからも選べます。"
)

# --- answers --------------------------------------------------------------------------------


def answer_text(question: str, answer: str, url: str | None) -> str:
    parts = [f"■ {question}", answer]
    if url:
        parts.append(f"くわしくは、公式のページをご覧ください。\n{url}")
    parts.append("このお答えは、役に立ちましたか？")
    return "\n\n".join(parts)


SUGGESTIONS = "もしかして、次のご質問ですか？\n近いものを押してください。"


def fallback_text(town: TownInfo) -> str:
    return (
        "申し訳ありません。お答えできませんでした。\n"
        f"{town.counter_name}にお電話でお問い合わせください。\n"
        f"電話：{town.counter_phone}\n"
        f"受付：{town.counter_hours}\n"
        "ご質問を職員に伝えることもできます。"
    )


def left_for_staff_text(town: TownInfo) -> str:
    return (
        "ご質問を職員に伝えました。ありがとうございます。\n"
        "職員が確認して、よくある質問に追加します。\n"
        "このチャットでは、個別にお返事できません。\n"
        f"お急ぎのときは、お電話ください。電話：{town.counter_phone}"
    )


FEEDBACK_THANKS = "ありがとうございます"


def not_helpful_text(town: TownInfo, *, can_leave_for_staff: bool) -> str:
    lines = ["お役に立てず、申し訳ありません。"]
    if can_leave_for_staff:
        lines.append("ご質問を職員に伝えることができます。")
    lines.append(f"お急ぎのときは、{town.counter_name}にお電話ください。")
    lines.append(f"電話：{town.counter_phone}（{town.counter_hours}）")
    return "\n".join(lines)


# --- categories -----------------------------------------------------------------------------

CATEGORIES = "カテゴリを選んでください。"
NO_CATEGORIES = "いまは、カテゴリから探せる質問がありません。\nご質問を文字で送ってください。"


def category_questions(category: str, page: int, pages: int) -> str:
    text = f"「{category}」の質問です。\n知りたい質問を押してください。"
    if pages > 1:
        text += f"\n（{page + 1}／{pages}ページ）"
    return text


# --- /mydata --------------------------------------------------------------------------------


def _date(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return f"{local.year}年{local.month}月{local.day}日"


def my_data_text(
    *,
    since: datetime,
    questions: int,
    left_for_staff: int,
    feedback: int,
    zone: ZoneInfo,
    class_registrations: int = 0,
) -> str:
    if class_registrations:
        names = (
            f"・スマホ教室のお申し込み：{class_registrations}件\n"
            "　お名前と、教えていただいた電話番号は、教室のご連絡のためだけに記録しています。\n"
            "ご質問の記録には、お名前や電話番号は含まれません。\n"
        )
    else:
        names = "・スマホ教室のお申し込み：0件\nお名前や電話番号は記録していません。\n"
    return (
        "このボットが記録している、あなたの情報です。\n"
        f"・使い始めた日：{_date(since, zone)}\n"
        f"・これまでのご質問：{questions}件（うち職員に伝えたもの：{left_for_staff}件）\n"
        "　電話番号などの数字やメールアドレスは「＊＊＊」に置きかえて記録しています。\n"
        f"・「役に立った／役に立たなかった」の回答：{feedback}件\n"
        f"{names}"
        "記録は、すべて削除できます。"
    )


CONFIRM_DELETE = "本当に削除しますか？\n削除すると、元に戻せません。"
CONFIRM_DELETE_WITH_CLASSES = (
    "本当に削除しますか？\n削除すると、元に戻せません。\n"
    "スマホ教室のお申し込みも、すべてキャンセルされます。"
)
DELETED = "あなたの記録を、すべて削除しました。\nまたご利用いただくと、新しく記録が始まります。"
NOT_DELETED = "削除しませんでした。記録はそのままです。"

# --- problems -------------------------------------------------------------------------------

STALE = "この操作はもう使えません。メニューからやり直してください。"
APOLOGY = (
    "申し訳ありません。うまく処理できませんでした。\n"
    "もう一度お試しいただくか、下のメニューから選んでください。"
)

# --- helpers --------------------------------------------------------------------------------


def button_label(text: str) -> str:
    """A question as a button label: one line, shortened with "…" when long."""
    line = " ".join(text.split())
    if len(line) <= BUTTON_TEXT_MAX:
        return line
    return line[: BUTTON_TEXT_MAX - 1] + "…"


def split_message(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split a long text into messages of at most `limit` characters.

    Breaks at paragraph boundaries first, then at line ends, then anywhere; every part but
    the last ends with "（続きます）" so the resident knows more is coming.
    """
    if len(text) <= limit:
        return [text]
    room = limit - len(CONTINUED) - 1
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = -1
        for separator in ("\n\n", "\n", "。"):
            position = rest.rfind(separator, 0, room)
            if position > room // 4:
                cut = position + (len(separator) if separator == "。" else 0)
                break
        if cut <= 0:
            cut = room
        parts.append(rest[:cut].rstrip() + "\n" + CONTINUED)
        rest = rest[cut:].lstrip("\n")
    parts.append(rest)
    return parts


ALREADY_LEFT_FOR_STAFF = "このご質問は、もう職員に伝えてあります。"

# Commands in Telegram's "/" menu: (command, description).
COMMANDS = (
    ("start", "はじめる"),
    ("menu", "メニューを出す"),
    ("help", "使い方"),
    ("mydata", "記録している情報を見る・削除する"),
)
