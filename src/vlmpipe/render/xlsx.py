"""A streaming xlsx writer: rows are written as worksheet XML as they come, so a workbook of 40,000 generations is
written in seconds and in constant memory (openpyxl keeps every cell as an object: ~10x slower, and its write-only
mode still ~5x). A :class:`Sheet` writes to any file — a temporary one of the workbook (:meth:`XlsxWriter.sheet`,
several may be open at once), or one another process filled (:meth:`XlsxWriter.add_sheet_file`) — and the workbook
is zipped when closed, its sheets in the order they were added.

What the report's sheets need and no more: a bold, wrapped, frozen header row; column widths; numbers with a
number format; every text an inline string — never a formula, whatever it starts with (model output is untrusted);
characters XML cannot hold dropped; a text longer than Excel's 32,767 characters cut there (the CSVs keep it
whole); sheets in the order they are added. openpyxl and Excel read the result.
"""

from __future__ import annotations

import math
import numbers
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from xml.sax.saxutils import escape

import regex

#: Excel's limits: rows per sheet (header included) and characters per cell.
MAX_ROWS = 1_048_576
MAX_CELL_CHARS = 32_767
NUMBER_FORMAT = "0.000"

# characters XML 1.0 cannot hold (controls other than tab, newline, carriage return; surrogates; U+FFFE/U+FFFF)
_ILLEGAL = regex.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BAD_SHEET_NAME = regex.compile(r"[\[\]:*?/\\]")

_STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="1"><numFmt numFmtId="164" formatCode="{NUMBER_FORMAT}"/></numFmts>
<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>
<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" applyAlignment="1">\
<alignment vertical="top" wrapText="1"/></xf>
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""
HEADER_STYLE, FLOAT_STYLE = 1, 2


def text_cell(value: str) -> str:
    """The XML of an inline-string cell's content: legal characters only, at most Excel's length."""
    value = _ILLEGAL.sub("", value)[:MAX_CELL_CHARS]
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() or "\n" in value else ""
    return f"<is><t{space}>{escape(value)}</t></is>"


class Sheet:
    """One worksheet's XML written to ``handle``: :meth:`append` rows (the header is the first); ``rows`` counts
    them; :meth:`close` ends the XML and closes the file."""

    def __init__(self, handle: IO[bytes], header: list[str], widths: list[float] | None = None) -> None:
        self._out = handle
        self.rows = 0
        self.width = len(header)
        cols = "".join(f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>'
                       for i, w in enumerate(widths or [], 1))
        self._write(
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft"'
            ' state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/>{"<cols>" + cols + "</cols>" if cols else ""}<sheetData>')
        self.append(header, style=HEADER_STYLE)

    def _write(self, text: str) -> None:
        self._out.write(text.encode("utf-8"))

    def append(self, row: Iterable[Any], *, style: int | None = None) -> None:
        """One row; ``None`` leaves a cell empty. Cells carry no reference: each is in the next column."""
        self.rows += 1
        s = f' s="{style}"' if style else ""
        fs = f' s="{style or FLOAT_STYLE}"'
        cells = []
        for v in row:
            if v is None:
                cells.append("<c/>")
            elif v.__class__ is str:
                cells.append(f'<c t="inlineStr"{s}>{text_cell(v)}</c>')
            elif v.__class__ is float:
                cells.append(f"<c{fs}><v>{v!r}</v></c>" if math.isfinite(v)
                             else f'<c t="inlineStr"{s}>{text_cell(str(v))}</c>')
            elif isinstance(v, bool):
                cells.append(f'<c t="b"{s}><v>{int(v)}</v></c>')
            elif isinstance(v, numbers.Integral):
                cells.append(f"<c{s}><v>{int(v)}</v></c>")
            elif isinstance(v, numbers.Real) and math.isfinite(v):
                cells.append(f"<c{fs}><v>{float(v)!r}</v></c>")
            else:  # text, and what Excel has no number for (nan, inf): a string, never a formula
                cells.append(f'<c t="inlineStr"{s}>{text_cell(str(v))}</c>')
        self._write(f'<row r="{self.rows}">{"".join(cells)}</row>')

    def close(self) -> None:
        self._write("</sheetData></worksheet>")
        self._out.close()


def sheet_file(path: Path, header: list[str], widths: list[float] | None = None) -> Sheet:
    """A sheet written to the file ``path`` (e.g. by another process), for :meth:`XlsxWriter.add_sheet_file`."""
    return Sheet(Path(path).open("wb"), header, widths)


class XlsxWriter:
    """``with XlsxWriter(path) as wb: sheet = wb.sheet(name, header, widths); sheet.append(row)...``: sheets are
    written to temporary files (several may be filled at once) and zipped, in the order they were added, when the
    ``with`` block ends."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tmp = tempfile.TemporaryDirectory(prefix="xlsx-", dir=self.path.parent)
        self._sheets: list[tuple[str, Path, Sheet | None]] = []

    def _name(self, name: str) -> str:
        name = _BAD_SHEET_NAME.sub("_", name)[:31]
        if name in {n for n, _p, _s in self._sheets}:
            raise ValueError(f"sheet {name!r} added twice")
        return name

    def sheet(self, name: str, header: list[str], widths: list[float] | None = None) -> Sheet:
        name = self._name(name)
        path = Path(self._tmp.name) / f"{len(self._sheets)}.xml"
        sheet = sheet_file(path, header, widths)
        self._sheets.append((name, path, sheet))
        return sheet

    def add_sheet_file(self, name: str, path: Path) -> None:
        """A sheet whose XML :func:`sheet_file` wrote to ``path`` (closed)."""
        self._sheets.append((self._name(name), Path(path), None))

    def close(self) -> None:
        for _name, _path, sheet in self._sheets:
            if sheet is not None and not sheet._out.closed:
                sheet.close()
        try:
            self._zip()
        finally:
            self._tmp.cleanup()

    def _zip(self) -> None:
        n = len(self._sheets)
        names = [name for name, _p, _s in self._sheets]
        sheets = "".join(f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, name in enumerate(names, 1))
        rels = "".join(f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
        head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr("[Content_Types].xml", head + (
                '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" ContentType="application/'
                f'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>{overrides}</Types>'))
            z.writestr("_rels/.rels", head + (
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
                'officeDocument" Target="xl/workbook.xml"/></Relationships>'))
            z.writestr("xl/workbook.xml", head + (
                '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                f'<bookViews><workbookView/></bookViews><sheets>{sheets}</sheets></workbook>'))
            z.writestr("xl/_rels/workbook.xml.rels", head + (
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'{rels}<Relationship Id="rId{n + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                'relationships/styles" Target="styles.xml"/></Relationships>'))
            z.writestr("xl/styles.xml", _STYLES)
            for i, (_name, path, _sheet) in enumerate(self._sheets, 1):
                with path.open("rb") as src, z.open(f"xl/worksheets/sheet{i}.xml", "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)

    def __enter__(self) -> XlsxWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            for _name, _path, sheet in self._sheets:
                if sheet is not None and not sheet._out.closed:
                    sheet._out.close()
            self._tmp.cleanup()
            return
        self.close()
