"""The tables of an HTML page as lists of cell texts (stdlib parser), so tests can check values in their rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class HtmlTable:
    attrs: dict[str, str]
    rows: list[list[str]] = field(default_factory=list)

    def row(self, first_cell: str) -> list[str]:
        """The row whose first cell is ``first_cell`` (exactly one)."""
        found = [r for r in self.rows if r and r[0] == first_cell]
        assert len(found) == 1, f"{len(found)} rows start with {first_cell!r}"
        return found[0]


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[HtmlTable] = []
        self._open: list[HtmlTable] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            t = HtmlTable({k: v or "" for k, v in attrs})
            self.tables.append(t)
            self._open.append(t)
        elif tag == "tr" and self._open:
            self._open[-1].rows.append([])
        elif tag in ("td", "th") and self._open:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._open and self._cell is not None:
            self._open[-1].rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> list[HtmlTable]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def table(html: str, **attrs: str) -> HtmlTable:
    """The one table whose attributes include ``attrs`` (``id="errors-table"``, ``data_model="x"``)."""
    want = {k.replace("_", "-"): v for k, v in attrs.items()}
    found = [t for t in tables(html) if all(t.attrs.get(k) == v for k, v in want.items())]
    assert len(found) == 1, f"{len(found)} tables with {want}"
    return found[0]
