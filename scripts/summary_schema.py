"""Write docs/summary.schema.json, the JSON Schema of report/summary.json, from the typed summary model.

    .venv/bin/python scripts/summary_schema.py          # rewrite the file
    .venv/bin/python scripts/summary_schema.py --check  # exit 1 when the file is out of date

tests/test_summary_schema.py keeps the file in sync and validates every summary the tests produce against it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vlmpipe.analysis.summary import json_schema

PATH = Path(__file__).resolve().parents[1] / "docs" / "summary.schema.json"


def text() -> str:
    return json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        current = PATH.read_text(encoding="utf-8") if PATH.is_file() else ""
        if current != text():
            print(f"{PATH} is out of date: run python scripts/summary_schema.py")
            sys.exit(1)
        sys.exit(0)
    PATH.write_text(text(), encoding="utf-8")
    print(f"wrote {PATH}")
