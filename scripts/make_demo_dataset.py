#!/usr/bin/env python3
"""Render the bundled synthetic demo dataset of Russian tech-support screenshots.

Each item is a fictional mobile/web app screen (shop "Маркет Плюс", bank
"Сфера Банк") plus a hand-written user request to a support chat bot.  The
script writes PNG files and ``manifest.jsonl`` to ``src/vlmpipe/app/demo/data``.

Requirements: Pillow and the DejaVu Sans fonts (Debian package
``fonts-dejavu-core``).  The output is deterministic: no randomness, no
timestamps, no PNG metadata.

Usage::

    python scripts/make_demo_dataset.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

DEFAULT_OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "vlmpipe" / "app" / "demo" / "data"

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]

WHITE: Color = (255, 255, 255)
INK: Color = (20, 24, 31)
GREY: Color = (92, 99, 112)
LINE: Color = (222, 226, 232)

# Money amounts such as "20 588 ₽" or "18 230,50 ₽".
AMOUNT_RE = re.compile(r"\d{1,3}(?: \d{3})*(?:,\d{2})? ₽")
EN_SPACE = "\u2002"


def widen_amount_spaces(text: str) -> str:
    """Render the spaces inside money amounts as en spaces.

    With ordinary spaces Tesseract tends to glue "1 490 ₽" into "14902"; the
    wider gap keeps digit groups and the rouble sign apart.  Only the pixels
    change: OCR still returns plain spaces.
    """
    return AMOUNT_RE.sub(lambda m: m.group(0).replace(" ", EN_SPACE), text)


# --------------------------------------------------------------------------- #
# Drawing toolkit
# --------------------------------------------------------------------------- #


class FontCache:
    """Loads DejaVu Sans fonts by (size, bold) once."""

    def __init__(self) -> None:
        missing = [str(p) for p in (FONT_REGULAR, FONT_BOLD) if not p.is_file()]
        if missing:
            raise SystemExit(
                "error: font file(s) not found: "
                + ", ".join(missing)
                + "\nInstall DejaVu fonts with Cyrillic support, e.g. "
                "`apt-get install fonts-dejavu-core`."
            )
        self._cache: dict[tuple[int, bool], ImageFont.FreeTypeFont] = {}

    def get(self, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
        key = (size, bold)
        if key not in self._cache:
            path = FONT_BOLD if bold else FONT_REGULAR
            self._cache[key] = ImageFont.truetype(str(path), size)
        return self._cache[key]


@dataclass
class Screen:
    """A canvas with small helpers for flat app-UI elements."""

    img: Image.Image
    draw: ImageDraw.ImageDraw
    fonts: FontCache

    @classmethod
    def new(cls, fonts: FontCache, size: tuple[int, int], bg: Color) -> Screen:
        img = Image.new("RGB", size, bg)
        return cls(img=img, draw=ImageDraw.Draw(img), fonts=fonts)

    @property
    def width(self) -> int:
        return self.img.width

    # -- text -------------------------------------------------------------- #

    def text_width(self, text: str, size: int, bold: bool = False) -> int:
        return round(self.draw.textlength(text, font=self.fonts.get(size, bold)))

    def text(
        self,
        x: int,
        y: int,
        text: str,
        size: int,
        *,
        bold: bool = False,
        fill: Color = INK,
        align: str = "left",
    ) -> int:
        """Draw one line; ``x`` is the left/centre/right edge per ``align``.

        Returns the y coordinate just below the line.
        """
        text = widen_amount_spaces(text)
        width = self.text_width(text, size, bold)
        if align == "center":
            x -= width // 2
        elif align == "right":
            x -= width
        if x < 0 or x + width > self.width:
            raise ValueError(f"text does not fit the screen: {text!r}")
        self.draw.text((x, y), text, font=self.fonts.get(size, bold), fill=fill)
        return y + int(size * 1.3)

    def wrapped(
        self,
        x: int,
        y: int,
        text: str,
        size: int,
        max_width: int,
        *,
        bold: bool = False,
        fill: Color = INK,
        align: str = "left",
        line_gap: float = 1.35,
    ) -> int:
        """Draw text word-wrapped to ``max_width``; returns the y below it."""
        lines: list[str] = []
        current = ""
        for word in text.split(" "):
            candidate = f"{current} {word}" if current else word
            if self.text_width(candidate, size, bold) <= max_width:
                current = candidate
            else:
                if current:
                    lines.append(current)
                current = word
        if current:
            lines.append(current)
        for line in lines:
            lx = x + max_width // 2 if align == "center" else x
            self.text(lx, y, line, size, bold=bold, fill=fill, align=align)
            y += int(size * line_gap)
        return y

    # -- shapes ------------------------------------------------------------ #

    def rect(
        self,
        box: Box,
        fill: Color | None,
        *,
        radius: int = 0,
        outline: Color | None = None,
        width: int = 1,
    ) -> None:
        if radius:
            self.draw.rounded_rectangle(box, radius=radius, fill=fill, outline=outline, width=width)
        else:
            self.draw.rectangle(box, fill=fill, outline=outline, width=width)

    @staticmethod
    def check_above(y: int, limit: int, what: str) -> None:
        """Fail loudly if content that ends at ``y`` would run into ``limit``."""
        if y > limit:
            raise ValueError(f"layout overflow: {what} ends at y={y}, limit is {limit}")

    def hline(self, x1: int, x2: int, y: int, color: Color = LINE) -> None:
        self.draw.line([(x1, y), (x2, y)], fill=color, width=1)

    def circle(self, cx: int, cy: int, r: int, fill: Color, outline: Color | None = None) -> None:
        self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=2)

    def icon(self, cx: int, cy: int, r: int, glyph: str, bg: Color, fg: Color = WHITE) -> None:
        """A round icon with a centred glyph."""
        self.circle(cx, cy, r, bg)
        font = self.fonts.get(int(r * 1.1), True)
        self.draw.text((cx, cy), glyph, font=font, fill=fg, anchor="mm")

    def button(
        self,
        box: Box,
        label: str,
        *,
        bg: Color | None,
        fg: Color,
        size: int = 18,
        outline: Color | None = None,
        radius: int = 12,
    ) -> None:
        self.rect(box, bg, radius=radius, outline=outline, width=2)
        cx = (box[0] + box[2]) // 2
        cy = (box[1] + box[3]) // 2
        self.draw.text((cx, cy), label, font=self.fonts.get(size, True), fill=fg, anchor="mm")

    def badge(self, x: int, y: int, label: str, *, bg: Color, fg: Color, size: int = 16) -> int:
        """A pill-shaped status badge at (x, y); returns its right edge."""
        w = self.text_width(label, size, True) + 24
        h = int(size * 1.8)
        self.rect((x, y, x + w, y + h), bg, radius=h // 2)
        self.draw.text((x + w // 2, y + h // 2), label, font=self.fonts.get(size, True), fill=fg, anchor="mm")
        return x + w

    def row(
        self,
        x1: int,
        x2: int,
        y: int,
        label: str,
        value: str,
        *,
        size: int = 18,
        label_color: Color = GREY,
        value_color: Color = INK,
        value_bold: bool = False,
        divider: bool = True,
    ) -> int:
        """A "label ........ value" row; returns the y below it.

        Values are regular weight by default: OCR keeps the digit groups of
        amounts such as "20 588 ₽" apart far better than with the bold face.
        """
        self.text(x1, y, label, size, fill=label_color)
        self.text(x2, y, value, size, bold=value_bold, fill=value_color, align="right")
        y += int(size * 1.9)
        if divider:
            self.hline(x1, x2, y - int(size * 0.5))
        return y

    def status_bar(self, clock: str, fg: Color, bg: Color, height: int = 44) -> int:
        """A phone status bar with a clock, signal bars and a battery."""
        self.rect((0, 0, self.width, height), bg)
        self.text(24, (height - 17) // 2, clock, 16, bold=True, fill=fg)
        right = self.width - 22
        # battery
        self.rect((right - 28, height // 2 - 7, right - 2, height // 2 + 7), None, radius=3, outline=fg)
        self.rect((right - 25, height // 2 - 4, right - 8, height // 2 + 4), fg)
        self.rect((right, height // 2 - 3, right + 2, height // 2 + 3), fg)
        # signal
        for i in range(4):
            bx = right - 64 + i * 7
            self.rect((bx, height // 2 + 6 - (i + 1) * 3, bx + 4, height // 2 + 6), fg)
        return height

    def app_bar(
        self, y: int, title: str, *, bg: Color, fg: Color, height: int = 60, back: bool = True
    ) -> int:
        """A top app bar with an optional back arrow; returns the y below it."""
        self.rect((0, y, self.width, y + height), bg)
        x = 20
        if back:
            self.draw.text((x, y + height // 2), "←", font=self.fonts.get(24, True), fill=fg, anchor="lm")
            x += 40
        self.draw.text((x, y + height // 2), title, font=self.fonts.get(21, True), fill=fg, anchor="lm")
        return y + height

    def tab_bar(self, labels: list[str], active: int, *, fg: Color, accent: Color, height: int = 64) -> None:
        """A bottom navigation bar."""
        top = self.img.height - height
        self.rect((0, top, self.width, self.img.height), WHITE)
        self.hline(0, self.width, top)
        step = self.width / len(labels)
        for i, label in enumerate(labels):
            cx = int(step * i + step / 2)
            color = accent if i == active else fg
            self.circle(cx, top + 20, 8, color)
            self.draw.text((cx, top + 44), label, font=self.fonts.get(13), fill=color, anchor="mm")


# --------------------------------------------------------------------------- #
# Scenarios
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Item:
    id: str
    image: str
    reference: str
    facts: list[str]


Scenario = Callable[[FontCache], tuple[Image.Image, Item]]


def failed_payment(fonts: FontCache) -> tuple[Image.Image, Item]:
    """Phone portrait, shop app, blue theme: payment declined by the bank."""
    blue: Color = (26, 86, 219)
    red: Color = (214, 48, 49)
    s = Screen.new(fonts, (390, 844), (244, 246, 250))
    y = s.status_bar("14:07", WHITE, blue)
    y = s.app_bar(y, "Оплата заказа", bg=blue, fg=WHITE)

    s.icon(195, y + 70, 38, "!", red)
    y = s.text(195, y + 126, "Оплата не прошла", 27, bold=True, align="center")
    y = s.wrapped(30, y + 6, "Банк отклонил операцию. Деньги не списаны.", 18, 330, fill=GREY, align="center")

    card_top = y + 18
    s.rect((16, card_top, 374, card_top + 236), WHITE, radius=16, outline=LINE)
    cy = card_top + 22
    cy = s.row(34, 356, cy, "Заказ", "№ 03718254-0419")
    cy = s.row(34, 356, cy, "Сумма", "20 588 ₽")
    cy = s.row(34, 356, cy, "Карта", "Visa •••• 4821")
    cy = s.row(34, 356, cy, "Дата", "12.11.2026, 14:05")
    cy = s.row(34, 356, cy, "Код ошибки", "05", divider=False)
    cy = s.text(34, cy - 6, "Причина: отказ банка-эмитента", 18, fill=red)
    s.check_above(cy, card_top + 226, "failed_payment card")

    s.button((16, 666, 374, 720), "Повторить оплату", bg=blue, fg=WHITE)
    s.button((16, 734, 374, 788), "Выбрать другой способ", bg=None, fg=blue, outline=blue)
    s.text(195, 806, "Маркет Плюс · безопасная оплата", 14, fill=GREY, align="center")

    item = Item(
        id="failed_payment",
        image="failed_payment.png",
        reference=(
            "Здравствуйте! Не проходит оплата заказа № 03718254-0419 на сумму 20 588 ₽ "
            "картой Visa •••• 4821: 12.11.2026 в 14:05 приложение показало ошибку 05 "
            "«Отказ банка-эмитента», деньги не списались. Подскажите, почему так "
            "происходит и как всё-таки оплатить заказ?"
        ),
        facts=["03718254-0419", "20 588 ₽", "4821", "12.11.2026", "14:05"],
    )
    return s.img, item


def cancelled_order(fonts: FontCache) -> tuple[Image.Image, Item]:
    """Small Android phone, shop app, orange theme: order cancelled."""
    orange: Color = (242, 101, 34)
    red_bg: Color = (253, 228, 226)
    red: Color = (180, 35, 24)
    s = Screen.new(fonts, (360, 640), WHITE)
    y = s.status_bar("20:41", INK, WHITE, height=36)
    y = s.app_bar(y, "Маркет Плюс", bg=orange, fg=WHITE, height=56)

    y = s.text(18, y + 18, "Заказ № 02632305-0222", 20, bold=True)
    s.badge(18, y + 4, "Отменён", bg=red_bg, fg=red)
    y += 46
    y = s.text(18, y, "23 октября, 20:32", 18)
    s.hline(18, 342, y + 10)

    y += 22
    y = s.text(18, y, "Причина отмены", 16, fill=GREY)
    y = s.wrapped(18, y + 2, "Продавец не передал товар в доставку", 18, 324, bold=True)

    y += 10
    s.rect((18, y, 342, y + 96), (247, 247, 249), radius=12)
    s.rect((30, y + 14, 98, y + 82), (214, 219, 228), radius=8)
    s.icon(64, y + 48, 18, "♪", (120, 128, 142))
    s.text(112, y + 14, "Наушники SoundPro X2", 16, bold=True)
    s.text(112, y + 38, "1 шт.", 16, fill=GREY)
    s.text(112, y + 58, "3 270 ₽", 20)
    y += 106

    y = s.row(18, 342, y, "Оплачено", "3 270 ₽")
    y = s.wrapped(18, y, "Деньги вернутся на карту •••• 9054 в течение 3 рабочих дней.", 16, 324, fill=GREY)

    s.check_above(y, 520, "cancelled_order body")
    s.button((18, 528, 342, 574), "Повторить заказ", bg=orange, fg=WHITE, size=17)
    s.button((18, 584, 342, 630), "Написать в поддержку", bg=None, fg=orange, outline=orange, size=17)

    item = Item(
        id="cancelled_order",
        image="cancelled_order.png",
        reference=(
            "Здравствуйте! Мой заказ № 02632305-0222 на сумму 3 270 ₽ отменили "
            "23 октября в 20:32 с причиной «Продавец не передал товар в доставку». "
            "Подскажите, почему так произошло и когда вернутся деньги?"
        ),
        facts=["02632305-0222", "3 270 ₽", "23 октября", "20:32"],
    )
    return s.img, item


def blocked_card(fonts: FontCache) -> tuple[Image.Image, Item]:
    """Phone portrait, bank app with a dark header: card blocked."""
    navy: Color = (16, 37, 66)
    teal: Color = (0, 150, 136)
    red: Color = (192, 40, 40)
    s = Screen.new(fonts, (390, 844), (240, 242, 245))
    s.rect((0, 0, 390, 300), navy)
    y = s.status_bar("02:31", WHITE, navy)
    y = s.app_bar(y, "Сфера Банк · Карты", bg=navy, fg=WHITE)

    # the payment card itself
    top = y + 14
    s.rect((30, top, 360, top + 170), (52, 73, 94), radius=18)
    s.text(52, top + 20, "Дебетовая карта", 16, fill=(200, 210, 222))
    s.text(52, top + 74, "•••• 7315", 26, bold=True, fill=WHITE)
    s.text(338, top + 128, "MasterCard", 18, bold=True, fill=WHITE, align="right")
    s.badge(52, top + 122, "Заблокирована", bg=(255, 224, 224), fg=red, size=14)

    y = 322
    s.rect((16, y, 374, y + 268), WHITE, radius=16)
    s.icon(52, y + 40, 20, "!", red)
    s.text(84, y + 27, "Карта заблокирована", 22, bold=True, fill=red)
    y = s.wrapped(
        34,
        y + 76,
        "Мы заблокировали карту MasterCard •••• 7315 после подозрительной операции:",
        18,
        322,
    )
    y += 6
    y = s.row(34, 356, y, "Дата", "5 ноября, 02:14")
    y = s.row(34, 356, y, "Сумма", "12 000 ₽")
    y = s.row(34, 356, y, "Получатель", "ELECTRO-WORLD", divider=False)

    s.button((16, 612, 374, 666), "Это был я — разблокировать", bg=teal, fg=WHITE, size=17)
    s.button((16, 680, 374, 734), "Позвонить в банк", bg=WHITE, fg=navy, outline=navy, size=17)
    s.tab_bar(["Главная", "Платежи", "Карты", "Чат"], 2, fg=GREY, accent=teal)

    item = Item(
        id="blocked_card",
        image="blocked_card.png",
        reference=(
            "Добрый день! Мою карту MasterCard •••• 7315 заблокировали после "
            "подозрительной операции 5 ноября в 02:14 на сумму 12 000 ₽, которую "
            "я не совершал. Что мне делать и как разблокировать карту?"
        ),
        facts=["7315", "5 ноября", "02:14", "12 000 ₽"],
    )
    return s.img, item


def pending_refund(fonts: FontCache) -> tuple[Image.Image, Item]:
    """Web page 1024x600, shop personal account: refund still processing."""
    green: Color = (0, 122, 85)
    amber_bg: Color = (255, 240, 200)
    amber: Color = (133, 77, 0)
    s = Screen.new(fonts, (1024, 600), (246, 247, 249))

    # top navigation
    s.rect((0, 0, 1024, 64), WHITE)
    s.hline(0, 1024, 64)
    s.text(28, 18, "Маркет Плюс", 24, bold=True, fill=green)
    s.rect((232, 14, 580, 50), (240, 242, 245), radius=8)
    s.text(256, 22, "Искать товары", 16, fill=GREY)
    x = 616
    for label in ("Каталог", "Заказы", "Войти"):
        s.text(x, 22, label, 16, fill=INK)
        x += s.text_width(label, 16) + 28

    # sidebar
    s.rect((0, 65, 220, 600), WHITE)
    s.draw.line([(220, 65), (220, 600)], fill=LINE)
    sy = 92
    for i, label in enumerate(("Мои заказы", "Возвраты", "Профиль")):
        if i == 1:
            s.rect((12, sy - 8, 208, sy + 28), (228, 244, 238), radius=8)
        s.text(28, sy, label, 17, bold=i == 1, fill=green if i == 1 else INK)
        sy += 48

    # main card
    s.rect((248, 88, 996, 576), WHITE, radius=14, outline=LINE)
    s.text(276, 110, "Возврат по заказу № 04417829-0153", 24, bold=True)
    s.badge(276, 152, "В обработке", bg=amber_bg, fg=amber)
    s.text(430, 156, "Ожидаемый срок возврата: до 14.11.2026", 18, fill=INK)

    # refund details
    dy = 214
    dy = s.row(276, 610, dy, "Сумма к возврату", "1 490 ₽", size=20)
    dy = s.row(276, 610, dy, "Товар", "Чайник ElectroLine K12")
    dy = s.row(276, 610, dy, "Способ", "Visa •••• 2290")
    dy = s.row(276, 610, dy, "Заявка создана", "02.11.2026", divider=False)

    # timeline
    s.text(660, 200, "Статус возврата", 18, bold=True)
    steps = [
        ("Заявка создана", "02.11.2026", True),
        ("Товар принят в пункте выдачи", "04.11.2026", True),
        ("Проверка товара", "05.11.2026", True),
        ("Деньги отправлены", "ожидается", False),
    ]
    ty = 240
    for idx, (title, date, done) in enumerate(steps):
        color = green if done else (190, 196, 204)
        s.circle(672, ty + 11, 9, color)
        if done:
            s.draw.text((672, ty + 11), "✓", font=fonts.get(12, True), fill=WHITE, anchor="mm")
        if idx < len(steps) - 1:
            s.draw.line([(672, ty + 22), (672, ty + 60)], fill=color, width=2)
        s.text(694, ty, title, 16, bold=done, fill=INK if done else GREY)
        s.text(694, ty + 22, date, 16, fill=GREY)
        ty += 62

    s.rect((276, 490, 968, 546), (250, 250, 251), radius=10, outline=LINE)
    s.text(294, 508, "Обычно деньги приходят в течение 10 дней после проверки товара.", 16, fill=GREY)

    item = Item(
        id="pending_refund",
        image="pending_refund.png",
        reference=(
            "Здравствуйте! 02.11.2026 я оформил возврат по заказу № 04417829-0153 на "
            "1 490 ₽, но заявка до сих пор в статусе «В обработке», хотя деньги обещали "
            "вернуть до 14.11.2026. Когда поступят деньги?"
        ),
        facts=["02.11.2026", "04417829-0153", "1 490 ₽", "14.11.2026"],
    )
    return s.img, item


def late_delivery(fonts: FontCache) -> tuple[Image.Image, Item]:
    """Tall Android phone, shop app, green theme: delivery postponed."""
    green: Color = (22, 128, 60)
    warn_bg: Color = (255, 236, 214)
    warn: Color = (168, 72, 0)
    s = Screen.new(fonts, (412, 860), WHITE)
    y = s.status_bar("10:18", INK, (236, 246, 239), height=40)
    y = s.app_bar(y, "Отслеживание", bg=(236, 246, 239), fg=INK, height=58)

    y = s.text(20, y + 20, "Заказ № 05581204-0317", 22, bold=True)
    s.badge(20, y + 6, "Доставка задерживается", bg=warn_bg, fg=warn)
    y += 54

    s.rect((20, y, 392, y + 116), (255, 248, 240), radius=14, outline=(245, 200, 160))
    s.text(38, y + 16, "Ожидалась:", 18, fill=GREY)
    s.text(374, y + 16, "18 ноября", 18, bold=True, align="right")
    s.text(38, y + 48, "Новая дата:", 18, fill=GREY)
    s.text(374, y + 48, "21 ноября", 20, bold=True, fill=warn, align="right")
    s.text(38, y + 82, "Причина: задержка на сортировке", 16, fill=GREY)
    y += 140

    y = s.text(20, y, "История", 20, bold=True)
    steps = [
        ("Оформлен", "14 ноября, 19:02", True),
        ("Передан в доставку", "15 ноября, 11:40", True),
        ("Сортировочный центр Подольск", "16 ноября, 06:15", True),
        ("Пункт выдачи", "ожидается 21 ноября", False),
    ]
    y += 8
    for idx, (title, date, done) in enumerate(steps):
        color = green if done else (190, 196, 204)
        s.circle(34, y + 12, 10, color)
        if idx < len(steps) - 1:
            s.draw.line([(34, y + 24), (34, y + 64)], fill=color, width=3)
        s.text(58, y, title, 17, bold=done, fill=INK if done else GREY)
        s.text(58, y + 24, date, 16, fill=GREY)
        y += 66

    y += 6
    s.hline(20, 392, y)
    y += 14
    y = s.row(20, 392, y, "Сумма заказа", "5 860 ₽")
    y = s.text(20, y, "ПВЗ: ул. Ленина, 12", 17)
    s.check_above(y, 722, "late_delivery body")

    s.button((20, 730, 392, 780), "Связаться с поддержкой", bg=green, fg=WHITE)
    s.button((20, 792, 392, 842), "Отменить заказ", bg=None, fg=green, outline=green)

    item = Item(
        id="late_delivery",
        image="late_delivery.png",
        reference=(
            "Здравствуйте! Заказ № 05581204-0317 должны были доставить 18 ноября, а "
            "теперь в приложении написано, что доставка задерживается до 21 ноября. "
            "Можно ли ускорить доставку или отменить заказ и вернуть 5 860 ₽?"
        ),
        facts=["05581204-0317", "18 ноября", "21 ноября", "5 860 ₽"],
    )
    return s.img, item


def sms_login_error(fonts: FontCache) -> tuple[Image.Image, Item]:
    """A 600x400 modal dialog over a dimmed web page: wrong SMS code."""
    violet: Color = (91, 63, 201)
    red: Color = (176, 18, 36)
    s = Screen.new(fonts, (600, 400), (118, 122, 132))
    # hint of the page underneath
    s.rect((0, 0, 600, 40), (96, 100, 110))
    s.text(16, 10, "Маркет Плюс", 16, bold=True, fill=(200, 202, 208))

    s.rect((40, 28, 560, 384), WHITE, radius=16)
    s.text(530, 40, "×", 24, fill=GREY, align="right")
    s.text(300, 50, "Вход в Маркет Плюс", 22, bold=True, align="center")
    s.text(300, 86, "Код отправлен на номер +7 916 ***-**-37", 17, fill=INK, align="center")

    # code input boxes
    digits = "4819"
    bw, gap = 52, 14
    x0 = 300 - (4 * bw + 3 * gap) // 2
    for i, d in enumerate(digits):
        bx = x0 + i * (bw + gap)
        s.rect((bx, 124, bx + bw, 186), (255, 241, 242), radius=10, outline=red, width=2)
        s.draw.text((bx + bw // 2, 155), d, font=fonts.get(28, True), fill=INK, anchor="mm")

    s.text(300, 200, "Неверный код. Попыток не осталось.", 18, fill=red, align="center")
    s.text(300, 234, "Вход заблокирован до 21:47", 18, fill=INK, align="center")
    s.text(300, 262, "Код ошибки: AUTH-429", 18, fill=INK, align="center")

    s.button((80, 300, 520, 350), "Получить новый код", bg=(226, 228, 233), fg=(120, 124, 134), size=18)
    s.text(300, 358, "Не приходит SMS?", 14, fill=violet, align="center")

    item = Item(
        id="sms_login_error",
        image="sms_login_error.png",
        reference=(
            "Здравствуйте! Не могу войти в аккаунт: SMS-код, отправленный на номер "
            "+7 916 ***-**-37, не подходит, выдаётся ошибка AUTH-429, и вход "
            "заблокирован до 21:47. Что делать, если я ввожу код правильно?"
        ),
        facts=["+7 916 ***-**-37", "AUTH-429", "21:47"],
    )
    return s.img, item


def subscription_charge(fonts: FontCache) -> tuple[Image.Image, Item]:
    """A push-notification banner (720x240): unexpected subscription charge."""
    bank: Color = (16, 37, 66)
    s = Screen.new(fonts, (720, 240), (226, 230, 236))
    s.rect((16, 16, 704, 224), (252, 252, 253), radius=22, outline=(210, 214, 220))
    s.rect((40, 40, 88, 88), bank, radius=12)
    s.draw.text((64, 64), "СБ", font=fonts.get(18, True), fill=WHITE, anchor="mm")
    s.text(104, 42, "Сфера Банк", 18, bold=True, fill=GREY)
    s.text(680, 42, "01.12.2026, 09:15", 18, fill=GREY, align="right")
    s.text(104, 72, "Списание 399 ₽", 26, bold=True)
    s.text(104, 114, "Подписка «Плюс Кино», автопродление на 1 месяц", 19)
    s.text(104, 146, "Карта •••• 6603. Доступно: 18 230,50 ₽", 19)
    s.hline(40, 680, 182)
    s.text(104, 190, "Отключить подписку", 17, bold=True, fill=(0, 110, 200))
    s.text(680, 190, "Подробнее", 17, bold=True, fill=(0, 110, 200), align="right")

    item = Item(
        id="subscription_charge",
        image="subscription_charge.png",
        reference=(
            "Здравствуйте! 01.12.2026 в 09:15 с моей карты •••• 6603 списали 399 ₽ за "
            "подписку «Плюс Кино», которую я не оформлял. Как отключить подписку и "
            "вернуть деньги?"
        ),
        facts=["01.12.2026", "09:15", "6603", "399 ₽", "Плюс Кино"],
    )
    return s.img, item


def promo_not_applied(fonts: FontCache) -> tuple[Image.Image, Item]:
    """Phone portrait, cart screen, purple theme: promo code rejected."""
    purple: Color = (112, 48, 160)
    red: Color = (196, 30, 58)
    s = Screen.new(fonts, (390, 844), (248, 246, 252))
    y = s.status_bar("18:26", INK, WHITE)
    y = s.app_bar(y, "Корзина", bg=WHITE, fg=INK)
    s.hline(0, 390, y)

    items = [
        ("Кроссовки RunFlex, 42", "скидка −20%", "2 990 ₽"),
        ("Носки спортивные, 3 пары", "", "460 ₽"),
    ]
    y += 14
    for title, note, price in items:
        s.rect((16, y, 374, y + 104), WHITE, radius=14)
        s.rect((30, y + 16, 102, y + 88), (232, 226, 242), radius=10)
        s.text(116, y + 18, title, 16, bold=True)
        if note:
            s.badge(116, y + 44, note, bg=(255, 228, 232), fg=red, size=13)
        s.text(360, y + 68, price, 20, align="right")
        y += 116

    y += 4
    s.text(16, y, "Промокод", 18, bold=True)
    y += 32
    s.rect((16, y, 244, y + 52), WHITE, radius=10, outline=red, width=2)
    s.text(32, y + 14, "AUTUMN500", 20, bold=True)
    s.button((254, y, 374, y + 52), "Применить", bg=purple, fg=WHITE, size=15, radius=10)
    y += 62
    y = s.wrapped(16, y, "Промокод не действует для товаров со скидкой", 17, 358, bold=True, fill=red)
    y = s.text(16, y + 2, "Акция действует до 30.11.2026", 17, fill=GREY)

    y += 14
    s.rect((16, y, 374, y + 134), WHITE, radius=14)
    cy = y + 18
    cy = s.row(32, 358, cy, "Товары (2)", "3 450 ₽")
    cy = s.row(32, 358, cy, "Скидка по промокоду", "0 ₽")
    s.text(32, cy, "Итого", 22, bold=True)
    s.text(358, cy, "3 450 ₽", 22, bold=True, align="right")

    s.button((16, 760, 374, 816), "Перейти к оформлению", bg=purple, fg=WHITE)

    item = Item(
        id="promo_not_applied",
        image="promo_not_applied.png",
        reference=(
            "Здравствуйте! Пытаюсь применить промокод AUTUMN500 к корзине на 3 450 ₽, "
            "но приложение пишет «Промокод не действует для товаров со скидкой». "
            "Акция действует до 30.11.2026 — почему промокод не срабатывает?"
        ),
        facts=["AUTUMN500", "3 450 ₽", "30.11.2026"],
    )
    return s.img, item


SCENARIOS: list[Scenario] = [
    failed_payment,
    cancelled_order,
    blocked_card,
    pending_refund,
    late_delivery,
    sms_login_error,
    subscription_charge,
    promo_not_applied,
]


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def build(out_dir: Path) -> list[Item]:
    """Render every scenario into ``out_dir`` and write ``manifest.jsonl``."""
    fonts = FontCache()
    out_dir.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for scenario in SCENARIOS:
        img, item = scenario(fonts)
        for fact in item.facts:
            if fact not in item.reference:
                raise ValueError(f"{item.id}: fact {fact!r} is not in the reference")
        # No pnginfo, fixed options: identical bytes on every run.
        img.save(out_dir / item.image, format="PNG", optimize=True)
        items.append(item)

    lines = [
        json.dumps(
            {"id": it.id, "image": it.image, "reference": it.reference, "facts": it.facts},
            ensure_ascii=False,
        )
        for it in items
    ]
    (out_dir / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"output folder (default: {DEFAULT_OUT_DIR})",
    )
    args = parser.parse_args(argv)
    items = build(args.out_dir)
    for it in items:
        size = (args.out_dir / it.image).stat().st_size
        print(f"{it.image:28s} {size / 1024:6.1f} KB")
    print(f"wrote {len(items)} items + manifest.jsonl to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
