"""Key facts of a support request — amounts, numbers, dates, times, identifiers — found and normalised.

A *mention* is one numeric fact in a text, reduced to a canonical ``key`` so that different spellings of
the same fact compare equal:

* amounts and plain numbers → ``num:<value>``: «20 588 ₽», «20588 рублей», «20,588 rubles» → ``num:20588``;
  «1 234,50 ₽» → ``num:1234.5``. Digit groups separated by a space (also no-break and thin spaces) are one
  number; a comma followed by exactly three digits is a thousands separator, otherwise a decimal comma.
* dates → ``date:<day>.<month>`` (+ the year when written): «23 октября», «23.10», «23.10.2022»,
  «October 23». Two dates match when day and month agree and the years do not contradict each other.
* times → ``time:HH:MM``: «9:05» and «09:05» are equal.
* identifiers (digit runs joined by ``-``, ``/`` or spaces that are not a number, card masks such as
  «•••• 4821», phone numbers) → ``id:<digits>`` and also each digit run, so that «заказ 02632305» matches
  the identifier «02632305-0222».

Every mention also carries its digit runs (``runs``); they make matching lenient on purpose: a number in a
generation counts as grounded when its key, or its full digit string, occurs in a source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from vlmpipe.core.wordtokens import stem, words

MONTHS_RU = {
    "январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6, "июл": 7, "август": 8,
    "сентябр": 9, "октябр": 10, "ноябр": 11, "декабр": 12,
}
MONTHS_EN = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
_MONTH_RU = r"(?P<mon>январ[ьяе]|феврал[ьяе]|марта?|марте|апрел[ьяе]|ма[йяе]|июн[ьяе]|июл[ьяе]|августа?|августе|" \
            r"сентябр[ьяе]|октябр[ьяе]|ноябр[ьяе]|декабр[ьяе])"
_MONTH_EN = r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
            r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_SP = r"[ \u00a0\u202f\u2009]"

PATTERNS: list[tuple[str, regex.Pattern[str]]] = [
    ("date", regex.compile(r"(?<![\d.])(?P<d>[0-3]?\d)\.(?P<m>[01]\d)(?:\.(?P<y>(?:19|20)?\d\d))?(?![\d.]*\d)")),
    ("date_ru", regex.compile(rf"(?<!\d)(?P<d>[0-3]?\d){_SP}?{_MONTH_RU}(?:{_SP}(?P<y>(?:19|20)\d\d))?(?!\d)",
                              regex.IGNORECASE)),
    ("date_en1", regex.compile(rf"(?<!\d)(?P<d>[0-3]?\d)(?:st|nd|rd|th)?{_SP}(?:of{_SP})?{_MONTH_EN}\b"
                               rf"(?:,?{_SP}(?P<y>(?:19|20)\d\d))?", regex.IGNORECASE)),
    ("date_en2", regex.compile(rf"\b{_MONTH_EN}\.?{_SP}(?P<d>[0-3]?\d)(?:st|nd|rd|th)?(?!\d)"
                               rf"(?:,?{_SP}(?P<y>(?:19|20)\d\d))?", regex.IGNORECASE)),
    ("time", regex.compile(r"(?<![\d:])(?P<h>[0-2]?\d):(?P<mi>[0-5]\d)(?::[0-5]\d)?(?![\d:])")),
    ("phone", regex.compile(r"(?<![\d\w])\+?[78][ \u00a0(-]*\(?\d{3}\)?[ \u00a0)-]*"
                            r"\d{3}[ \u00a0-]?\d{2}[ \u00a0-]?\d{2}(?!\d)")),
    ("id", regex.compile(r"(?<![\d\w])\d+(?:[-/]\d+)+(?![\d\w])")),
    ("number", regex.compile(rf"(?<![\d\w])\d{{1,3}}(?:{_SP}\d{{3}})+(?:,\d+)?(?!\d)"
                             r"|(?<![\d\w.,])\d+(?:[.,]\d+)?(?!\d)")),
]


@dataclass(frozen=True)
class Mention:
    kind: str  # number, date, time, id
    text: str
    key: str
    digits: str
    runs: tuple[str, ...] = field(default=())


def _number_value(raw: str) -> str | None:
    s = regex.sub(_SP, "", raw)
    if regex.fullmatch(r"\d{1,3}(?:,\d{3})+", s):  # 20,588 (English thousands)
        s = s.replace(",", "")
    s = s.replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        return None
    return f"{value:.6f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def _month(name: str) -> int | None:
    low = name.lower().rstrip(".")
    for table in (MONTHS_RU, MONTHS_EN):
        for prefix, m in sorted(table.items(), key=lambda kv: -len(kv[0])):
            if low.startswith(prefix):
                return m
    return None


def _date_key(d: int, m: int, y: str | None) -> str | None:
    if not (1 <= d <= 31 and 1 <= m <= 12):
        return None
    if y:
        year = int(y) + (2000 if len(y) == 2 else 0)
        return f"date:{d}.{m}.{year}"
    return f"date:{d}.{m}"


#: A list item's number at the start of a line («1. Нажмите…», "2) Open…"): numbering, not a fact.
_ENUMERATOR = regex.compile(r"(?m)^[ \t]*\d{1,2}[.)](?=[ \t]+\S)")


def find_mentions(text: str, *, numbering: bool = False) -> list[Mention]:
    """Every numeric fact in ``text``, longest first where spans overlap (a date is not also a number); the numbers of
    a numbered list are not facts unless ``numbering`` (a source's numbers: a screenshot's «9. Про переводы» may
    reach an answer in the middle of a line, where it is no longer numbering)."""
    taken: list[tuple[int, int]] = [] if numbering else [m.span() for m in _ENUMERATOR.finditer(text)]
    found: list[tuple[int, Mention]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for pattern_name, pat in PATTERNS:
        for m in pat.finditer(text):
            kind = pattern_name
            a, b = m.span()
            if not free(a, b):
                continue
            raw = m.group(0)
            runs = tuple(regex.findall(r"\d+", raw))
            digits = "".join(runs)
            key: str | None
            if kind.startswith("date"):
                month = int(m.group("m")) if kind == "date" else _month(m.group("mon"))
                key = _date_key(int(m.group("d")), month or 0, m.group("y"))
                kind = "date"
            elif kind == "time":
                h = int(m.group("h"))
                key = f"time:{h:02d}:{m.group('mi')}" if h < 24 else None
            elif kind in ("phone", "id"):
                if kind == "phone" and len(digits) == 11 and digits[0] == "8":
                    digits = "7" + digits[1:]
                key, kind = f"id:{digits}", "id"
            else:
                value = _number_value(raw)
                key = None if value is None else f"num:{value}"
            if key is None:
                continue
            taken.append((a, b))
            found.append((a, Mention(kind, raw, key, digits, runs)))
    return [mention for _, mention in sorted(found, key=lambda t: t[0])]


def _date_matches(a: str, b: str) -> bool:
    pa, pb = a[5:].split("."), b[5:].split(".")
    return pa[:2] == pb[:2] and (len(pa) < 3 or len(pb) < 3 or pa[2] == pb[2])


@dataclass
class FactIndex:
    """What a source text (reference, facts, OCR) says numerically, for fast look-ups."""

    keys: set[str] = field(default_factory=set)
    digits: set[str] = field(default_factory=set)
    dates: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, *texts: str | None) -> FactIndex:
        """The index of source texts: every number they show counts, a numbered list's numbering included."""
        idx = cls()
        for t in texts:
            if t:
                idx.add(find_mentions(t, numbering=True))
        return idx

    def add(self, mentions: list[Mention]) -> None:
        for m in mentions:
            self.keys.add(m.key)
            self.digits.add(m.digits)
            self.digits.update(m.runs)
            if m.key.startswith("date:"):
                self.dates.append(m.key)

    def has(self, m: Mention, *, lenient: bool = True) -> bool:
        """Whether the mention's fact occurs here (same key; or, when lenient, the same digit string)."""
        if m.key in self.keys:
            return True
        if m.key.startswith("date:") and any(_date_matches(m.key, d) for d in self.dates):
            return True
        return lenient and m.kind != "date" and m.digits in self.digits


@dataclass(frozen=True)
class Fact:
    """A key fact: its text and the mentions it reduces to (empty for a purely verbal fact)."""

    text: str
    mentions: tuple[Mention, ...]


def parse_fact(text: str) -> Fact:
    return Fact(text, tuple(find_mentions(text)))


def facts_from_reference(reference: str) -> list[Fact]:
    """One fact per distinct numeric mention of the reference (amounts, numbers, dates, times, ids)."""
    seen: set[str] = set()
    out = []
    for m in find_mentions(reference):
        if m.key not in seen:
            seen.add(m.key)
            out.append(Fact(m.text, (m,)))
    return out


def fact_present(fact: Fact, generation: FactIndex, generation_text: str) -> bool:
    """A numeric fact is present when every mention it holds is; a verbal one when all its stemmed words are."""
    if fact.mentions:
        return all(generation.has(m) for m in fact.mentions)
    needed = {stem(w) for w in words(fact.text)}
    return bool(needed) and needed <= {stem(w) for w in words(generation_text)}
