"""The run store: ``run.sqlite``, the source of truth of a run.

Every generation row is keyed by what produced it (model, item, repeat, image bytes, prompt, sampling
parameters), written in its own transaction as soon as it finishes, and never duplicated: a killed run
loses at most the requests in flight, and a re-run skips what is done. The ``plan`` table holds the keys
of the current config, so reports show exactly the current run even when older rows remain.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS items (
        id TEXT PRIMARY KEY, image TEXT NOT NULL, image_sha TEXT, mime TEXT, width INTEGER, height INTEGER,
        user_message TEXT NOT NULL DEFAULT '', reference TEXT, facts TEXT NOT NULL DEFAULT '[]',
        error TEXT, ocr_text TEXT, position INTEGER NOT NULL DEFAULT 0)""",
    # the screenshot an item belongs to (intervals resample screenshots), its question and tags (second round)
    *(f"ALTER TABLE items ADD COLUMN {column}" for column in (
        "screenshot TEXT", "question TEXT", "answerable INTEGER NOT NULL DEFAULT 1", "tags TEXT NOT NULL DEFAULT '{}'",
        "fields TEXT NOT NULL DEFAULT '{}'")),
    """CREATE TABLE IF NOT EXISTS models (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, spec TEXT NOT NULL, info TEXT NOT NULL DEFAULT '{}',
        position INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS generations (
        key TEXT PRIMARY KEY, model TEXT NOT NULL, role TEXT NOT NULL, item TEXT NOT NULL,
        repeat INTEGER NOT NULL, text TEXT, error TEXT, error_kind TEXT,
        latency_s REAL, ttft_s REAL, prompt_tokens INTEGER, completion_tokens INTEGER,
        token_times TEXT, created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS plan (
        key TEXT PRIMARY KEY, model TEXT NOT NULL, role TEXT NOT NULL, item TEXT NOT NULL,
        repeat INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS scores (
        key TEXT NOT NULL, metric TEXT NOT NULL, value REAL, detail TEXT,
        PRIMARY KEY (key, metric))""",
    # One judge answer for one candidate generation in one order (see vlmpipe.stages.judge.store).
    """CREATE TABLE IF NOT EXISTS judgements (
        key TEXT PRIMARY KEY, generation_key TEXT NOT NULL, model TEXT NOT NULL, item TEXT NOT NULL,
        repeat INTEGER NOT NULL, candidate_position TEXT, signature TEXT NOT NULL, reference_sha TEXT,
        candidate_score REAL, reference_score REAL, explanation_candidate TEXT, explanation_reference TEXT,
        raw TEXT, error TEXT, error_kind TEXT, attempts INTEGER, prompt_tokens INTEGER,
        completion_tokens INTEGER, cost_usd REAL, latency_s REAL, created_at REAL NOT NULL)""",
    # Each (model, item)'s stability across repeats, computed by the score stage from the texts ``texts`` names.
    """CREATE TABLE IF NOT EXISTS stability (
        model TEXT NOT NULL, item TEXT NOT NULL, texts TEXT NOT NULL, consistency REAL, distinct_share REAL,
        PRIMARY KEY (model, item))""",
    # which judge of a panel answered (NULL: rows of stores before panels); the request the judgement sent or reused
    # (the hash of everything the judge saw) and, for a reused answer, the cost it would have had (issue 16)
    *(f"ALTER TABLE judgements ADD COLUMN {column}" for column in (
        "judge TEXT", "request_hash TEXT", "reused INTEGER NOT NULL DEFAULT 0", "cost_saved_usd REAL")),
    # where a generation's answer came from: NULL/'live' (requested, timed), 'cache' (the request cache: an identical
    # request was answered before), 'batch' (a batch engine's results file: no latency); its request's hash
    *(f"ALTER TABLE generations ADD COLUMN {column}" for column in ("source TEXT", "request_hash TEXT")),
    # The request cache: one answer per distinct request body (judge requests; generations with ``cache: true``),
    # so identical requests are paid once. Only final answers are kept (transport failures are asked again).
    """CREATE TABLE IF NOT EXISTS request_cache (
        hash TEXT PRIMARY KEY, stage TEXT NOT NULL, text TEXT, error TEXT, error_kind TEXT, attempts INTEGER,
        prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL, latency_s REAL, ttft_s REAL,
        source TEXT, created_at REAL NOT NULL)""",
    # Batches submitted to a batch API (``vlmpipe batch submit``): a second call polls them instead of re-submitting.
    """CREATE TABLE IF NOT EXISTS batches (
        id TEXT PRIMARY KEY, stage TEXT NOT NULL, model TEXT NOT NULL, input_file_id TEXT, status TEXT,
        output_file_id TEXT, error_file_id TEXT, requests INTEGER, created_at REAL NOT NULL, imported_at REAL)""",
    """CREATE TABLE IF NOT EXISTS bench (
        model TEXT NOT NULL, concurrency INTEGER NOT NULL, result TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (model, concurrency))""",
]

JUDGEMENT_FIELDS = (
    "key", "generation_key", "model", "item", "repeat", "candidate_position", "signature", "reference_sha",
    "candidate_score", "reference_score", "explanation_candidate", "explanation_reference", "raw", "error",
    "error_kind", "attempts", "prompt_tokens", "completion_tokens", "cost_usd", "latency_s", "created_at",
    "judge", "request_hash", "reused", "cost_saved_usd",
)

#: Judge failures that are the judge's final word (it answered, but unusably, after every allowed attempt): a re-run
#: does not pay for them again. Transport failures (timeouts, HTTP errors) are retried by the next run.
FINAL_JUDGE_ERRORS = ("malformed", "out_of_range")

#: Orders of :meth:`Store.iter_generations`: by model (then item, repeat); by item (then model, repeat); by screenshot
#: (in the order of its first item), then item, model, repeat — the gallery's cards. ``(join, order by)``.
ORDERS = {
    "model": ("", "m.position, i.position, g.repeat, g.key"),
    "item": ("", "i.position, m.position, g.repeat, g.key"),
    "screenshot": (" LEFT JOIN (SELECT COALESCE(screenshot, id) AS shot, MIN(position) AS first FROM items"
                   " GROUP BY COALESCE(screenshot, id)) s ON s.shot = COALESCE(i.screenshot, i.id)",
                   "s.first, i.position, m.position, g.repeat, g.key"),
}

GENERATION_FIELDS = (
    "key", "model", "role", "item", "repeat", "text", "error", "error_kind", "latency_s", "ttft_s",
    "prompt_tokens", "completion_tokens", "token_times", "created_at", "source", "request_hash",
)

CACHE_FIELDS = (
    "hash", "stage", "text", "error", "error_kind", "attempts", "prompt_tokens", "completion_tokens", "cost_usd",
    "latency_s", "ttft_s", "source", "created_at",
)

BATCH_FIELDS = (
    "id", "stage", "model", "input_file_id", "status", "output_file_id", "error_file_id", "requests", "created_at",
    "imported_at",
)


class Store:
    """A thin typed layer over SQLite (WAL mode, one transaction per write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        for ddl in SCHEMA:
            try:
                self.conn.execute(ddl)
            except sqlite3.OperationalError as err:  # a column an earlier run already added
                if "duplicate column" not in str(err):
                    raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, ensure_ascii=False)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- items ------------------------------------------------------------------------------------
    def put_items(self, rows: Iterable[dict[str, Any]]) -> None:
        """Store items in order. ``screenshot`` (the cluster intervals resample) defaults to the item's id."""
        with self.transaction() as c:
            for pos, r in enumerate(rows):
                c.execute(
                    "INSERT OR REPLACE INTO items (id, image, image_sha, mime, width, height, user_message,"
                    " reference, facts, error, position, screenshot, question, answerable, tags, fields)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r["id"], r["image"], r.get("image_sha"), r.get("mime"), r.get("width"), r.get("height"),
                     r.get("user_message") or "", r.get("reference"),
                     json.dumps(r.get("facts") or [], ensure_ascii=False), r.get("error"), pos,
                     r.get("screenshot") or r["id"], r.get("question"), int(r.get("answerable", True)),
                     json.dumps(r.get("tags") or {}, ensure_ascii=False),
                     json.dumps(r.get("fields") or {}, ensure_ascii=False, default=str)),
                )

    def items(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM items ORDER BY position").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["facts"] = json.loads(d["facts"] or "[]")
            d["tags"] = json.loads(d["tags"] or "{}")
            d["fields"] = json.loads(d["fields"] or "{}")
            d["answerable"] = bool(d["answerable"])
            d["screenshot"] = d["screenshot"] or d["id"]
            out.append(d)
        return out

    def set_reference(self, item: str, text: str | None) -> None:
        with self.transaction() as c:
            c.execute("UPDATE items SET reference = ? WHERE id = ?", (text, item))

    # --- models -----------------------------------------------------------------------------------
    def put_models(self, models: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM models WHERE name NOT IN (SELECT DISTINCT model FROM plan)")
            for pos, (name, role, spec) in enumerate(models):
                c.execute(
                    "INSERT INTO models (name, role, spec, position) VALUES (?,?,?,?) ON CONFLICT(name) DO "
                    "UPDATE SET role=excluded.role, spec=excluded.spec, position=excluded.position",
                    (name, role, json.dumps(spec, ensure_ascii=False), pos),
                )

    def update_model_info(self, name: str, info: dict[str, Any]) -> None:
        current = self.model_info(name)
        current.update(info)
        with self.transaction() as c:
            c.execute("UPDATE models SET info = ? WHERE name = ?", (json.dumps(current, ensure_ascii=False), name))

    def model_info(self, name: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT info FROM models WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else {}

    def models(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM models ORDER BY position").fetchall()
        return [{**dict(r), "spec": json.loads(r["spec"]), "info": json.loads(r["info"])} for r in rows]

    # --- plan and generations ---------------------------------------------------------------------
    def set_plan(self, rows: Iterable[tuple[str, str, str, str, int]]) -> None:
        """Replace the plan with ``(key, model, role, item, repeat)`` rows."""
        with self.transaction() as c:
            c.execute("DELETE FROM plan")
            c.executemany("INSERT OR REPLACE INTO plan VALUES (?,?,?,?,?)", list(rows))

    def finished_keys(self) -> set[str]:
        """Keys of generations that completed without error (a re-run skips them)."""
        return {r[0] for r in self.conn.execute("SELECT key FROM generations WHERE error IS NULL")}

    def put_generation(self, row: dict[str, Any]) -> None:
        self.put_generations([row])

    def put_generations(self, rows: Iterable[dict[str, Any]], *, cache: dict[str, Any] | None = None) -> None:
        """Store generation rows in one transaction, with the request cache's entry they came from (``cache``)."""
        cols = ",".join(GENERATION_FIELDS)
        marks = ",".join("?" for _ in GENERATION_FIELDS)
        now = time.time()
        values = []
        for row in rows:
            v = {"created_at": now, **row}
            if isinstance(v.get("token_times"), list):
                v["token_times"] = json.dumps(v["token_times"])
            values.append(tuple(v.get(f) for f in GENERATION_FIELDS))
        with self.transaction() as c:
            c.executemany(f"INSERT OR REPLACE INTO generations ({cols}) VALUES ({marks})", values)
            if cache is not None:
                self._put_cache(c, cache)

    def generations(self, *, role: str | None = None, planned: bool = True) -> list[dict[str, Any]]:
        """Generation rows of the current plan (or every stored row), in model, item and repeat order."""
        sql = "SELECT g.* FROM generations g"
        if planned:
            sql += " JOIN plan p ON p.key = g.key"
        sql += " LEFT JOIN models m ON m.name = g.model LEFT JOIN items i ON i.id = g.item"
        args: list[Any] = []
        if role:
            sql += " WHERE g.role = ?"
            args.append(role)
        sql += " ORDER BY m.position, i.position, g.repeat"
        out = []
        for r in self.conn.execute(sql, args):
            d = dict(r)
            d["token_times"] = json.loads(d["token_times"]) if d["token_times"] else None
            out.append(d)
        return out

    def count_generations(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    # --- streaming the current plan's generations (reports and scoring of large runs) -------------------------
    # A run of 40,000 generations is read in chunks, in a stable order, never whole: memory stays flat as runs grow.

    def _planned(self, columns: str, *, ok: bool = False, model: str | None = None, join: str = ""
                 ) -> tuple[str, list[Any]]:
        sql = (f"SELECT {columns} FROM generations g JOIN plan p ON p.key = g.key"
               " LEFT JOIN models m ON m.name = g.model LEFT JOIN items i ON i.id = g.item" + join)
        where, args = [], []
        if ok:
            where.append("g.error IS NULL AND g.text IS NOT NULL")
        if model is not None:
            where.append("g.model = ?")
            args.append(model)
        return sql + (" WHERE " + " AND ".join(where) if where else ""), args

    def iter_generations(self, *, order: str = "model", ok: bool = False, model: str | None = None,
                         chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """The current plan's generation rows (``token_times`` left out) in lists of up to ``chunk``, in one of
        :data:`ORDERS` (``"model"``: as :meth:`generations`); ``ok``: the successful ones with a text; ``model``:
        one model's."""
        cols = ",".join(f"g.{f}" for f in GENERATION_FIELDS if f != "token_times")
        join, order_by = ORDERS[order]
        sql, args = self._planned(cols, ok=ok, model=model, join=join)
        cur = self.conn.execute(sql + " ORDER BY " + order_by, args)
        while True:
            rows = cur.fetchmany(chunk)
            if not rows:
                return
            yield [dict(r) for r in rows]

    def count_planned(self, *, ok: bool = False) -> int:
        """Generations of the current plan (``ok``: the successful ones with a text)."""
        sql, args = self._planned("COUNT(*)", ok=ok)
        return int(self.conn.execute(sql, args).fetchone()[0])

    def planned_items(self, *, ok: bool = False) -> set[str]:
        """The items of the current plan's generations (``ok``: of its successful ones with a text)."""
        sql, args = self._planned("DISTINCT g.item", ok=ok)
        return {r[0] for r in self.conn.execute(sql, args)}

    def scores_of(self, keys: list[str], *, details: bool = True) -> dict[str, dict[str, tuple[float | None, Any]]]:
        """``{generation key: {metric: (value, detail)}}`` of these generations (``details=False``: details
        ``None``)."""
        out: dict[str, dict[str, tuple[float | None, Any]]] = {k: {} for k in keys}
        column = "detail" if details else "NULL"
        for start in range(0, len(keys), 900):  # SQLite's limit on host parameters
            part = keys[start:start + 900]
            marks = ",".join("?" * len(part))
            for k, metric, value, detail in self.conn.execute(
                    f"SELECT key, metric, value, {column} FROM scores WHERE key IN ({marks})", part):
                out[k][metric] = (value, json.loads(detail) if detail is not None else None)
        return out

    def unscored_keys(self, keys: list[str], columns: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that lack a score in one of ``columns``."""
        columns = list(columns)
        have: dict[str, int] = {}
        for start in range(0, len(keys), 900):
            part = keys[start:start + 900]
            sql = (f"SELECT key, COUNT(*) FROM scores WHERE key IN ({','.join('?' * len(part))})"
                   f" AND metric IN ({','.join('?' * len(columns))}) GROUP BY key")
            have.update((k, n) for k, n in self.conn.execute(sql, [*part, *columns]))
        return {k for k in keys if have.get(k, 0) < len(columns)}

    def count_unscored(self, columns: Iterable[str]) -> int:
        """Successful planned generations that lack a score in one of ``columns``."""
        columns = list(columns)
        marks = ",".join("?" * len(columns))
        sql, args = self._planned("COUNT(*)", ok=True)
        sql += (f" AND (SELECT COUNT(*) FROM scores s WHERE s.key = g.key AND s.metric IN ({marks})) < ?")
        return int(self.conn.execute(sql, [*args, *columns, len(columns)]).fetchone()[0])

    def score_metrics(self) -> list[str]:
        """The metrics with a score for some generation of the current plan."""
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT s.metric FROM scores s JOIN plan p ON p.key = s.key ORDER BY s.metric")]

    def score_details(self, metric: str) -> Iterator[Any]:
        """The non-empty details of one metric over the current plan's generations, parsed, one at a time."""
        for (detail,) in self.conn.execute(
                "SELECT s.detail FROM scores s JOIN plan p ON p.key = s.key WHERE s.metric = ? AND s.detail IS NOT NULL"
                " AND s.detail NOT IN ('null', '[]', '{}', '\"\"')", (metric,)):
            yield json.loads(detail)

    def latencies(self) -> dict[str, list[float]]:
        """``{model: latencies of its successful planned generations}``."""
        out: dict[str, list[float]] = {}
        sql, args = self._planned("g.model, g.latency_s", ok=False)
        for model, latency in self.conn.execute(sql + " WHERE g.error IS NULL AND g.latency_s IS NOT NULL", args):
            out.setdefault(model, []).append(float(latency))
        return out

    # --- scores -----------------------------------------------------------------------------------
    def put_scores(self, rows: Iterable[tuple[str, str, float | None, Any]]) -> None:
        """Store ``(generation key, metric, value, detail)``; detail is any JSON-able value."""
        with self.transaction() as c:
            c.executemany(
                "INSERT OR REPLACE INTO scores VALUES (?,?,?,?)",
                [(k, m, v, None if d is None else json.dumps(d, ensure_ascii=False)) for k, m, v, d in rows],
            )

    def scores(self) -> dict[str, dict[str, tuple[float | None, Any]]]:
        """``{generation key: {metric: (value, detail)}}``."""
        out: dict[str, dict[str, tuple[float | None, Any]]] = {}
        for r in self.conn.execute("SELECT key, metric, value, detail FROM scores"):
            out.setdefault(r[0], {})[r[1]] = (r[2], json.loads(r[3]) if r[3] is not None else None)
        return out

    def scored_keys(self, metric: str) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM scores WHERE metric = ?", (metric,))}

    # --- stability of each (model, item) across repeats (score stage; the summary reuses it) -------------------
    def put_stability(self, rows: Iterable[tuple[str, str, str, float | None, float | None]]) -> None:
        """``(model, item, texts key, consistency, distinct share)`` rows."""
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO stability VALUES (?,?,?,?,?)", list(rows))

    def stability(self) -> dict[tuple[str, str], tuple[str, float | None, float | None]]:
        """``{(model, item): (texts key, consistency, distinct share)}``."""
        return {(r[0], r[1]): (r[2], r[3], r[4])
                for r in self.conn.execute("SELECT model, item, texts, consistency, distinct_share FROM stability")}

    # --- OCR text of items (grounding metric) -------------------------------------------------------
    def set_ocr_text(self, item: str, text: str) -> None:
        self.set_ocr_texts({item: text})

    def set_ocr_texts(self, texts: dict[str, str]) -> None:
        """``{item: OCR text}`` in one transaction."""
        with self.transaction() as c:
            c.executemany("UPDATE items SET ocr_text = ? WHERE id = ?", [(t, i) for i, t in texts.items()])

    # --- judgements (one judge answer for one candidate generation in one order) ----------------------
    # A row is keyed by the generation, the order (``candidate_position`` "A"/"B"; NULL for recorded judgements
    # whose order is unknown), the judge's signature and the reference text, so a changed prompt or reference makes
    # new rows and a re-run skips finished ones. ``meta["judge"]`` says how the current ones were made.
    def put_judgements(self, rows: Iterable[dict[str, Any]], *, cache: dict[str, Any] | None = None) -> None:
        """Store judgement rows in one transaction, with the request cache's entry they came from (``cache``)."""
        now = time.time()
        cols = ",".join(JUDGEMENT_FIELDS)
        marks = ",".join("?" for _ in JUDGEMENT_FIELDS)
        with self.transaction() as c:
            c.executemany(f"INSERT OR REPLACE INTO judgements ({cols}) VALUES ({marks})",
                          [tuple({"created_at": now, **r, "reused": int(bool(r.get("reused")))}.get(f)
                                 for f in JUDGEMENT_FIELDS) for r in rows])
            if cache is not None:
                self._put_cache(c, cache)

    def judgements(self, *, signature: str | None = None) -> list[dict[str, Any]]:
        """Every stored judgement (of ``signature`` when given), oldest first."""
        sql = "SELECT * FROM judgements"
        args: list[Any] = []
        if signature is not None:
            sql += " WHERE signature = ?"
            args.append(signature)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY created_at, key", args)]

    def judged_keys(self, max_attempts: int | None = None) -> set[str]:
        """Judgement keys a re-run must not request again: answered judgements and final failures. With
        ``max_attempts``, a malformed answer is final only after that many attempts (a batch gives one answer per
        judgement: the next run asks again, as the live stage would have)."""
        marks = ",".join("?" for _ in FINAL_JUDGE_ERRORS)
        sql = f"SELECT key FROM judgements WHERE error IS NULL OR (error_kind IN ({marks})"
        args: list[Any] = list(FINAL_JUDGE_ERRORS)
        if max_attempts is not None:
            sql += " AND (attempts IS NULL OR attempts >= ? OR reused = 1)"
            args.append(max_attempts)
        return {r[0] for r in self.conn.execute(sql + ")", args)}

    def judgement_rows(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored judgements of ``keys`` (``{key: row}``; keys without a row are left out)."""
        return self._rows_by("judgements", "key", keys)

    def _rows_by(self, table: str, column: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``{value: row}`` of the rows of ``table`` whose ``column`` is one of ``values`` (asked 500 at a time:
        SQLite's limit on parameters). ``table`` and ``column`` are this module's own names, never input."""
        wanted = list(dict.fromkeys(values))
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" for _ in chunk)
            out.update({r[column]: dict(r) for r in self.conn.execute(
                f"SELECT * FROM {table} WHERE {column} IN ({marks})", chunk)})
        return out

    def judge_cost_saved(self, *, signatures: Iterable[str] | None = None) -> float | None:
        """What the judgements that reused a stored answer would have cost (USD); ``None`` when none is priced."""
        sql, args = "SELECT SUM(cost_saved_usd) FROM judgements", []
        if signatures is not None:
            sigs = list(signatures)
            sql += f" WHERE signature IN ({','.join('?' for _ in sigs)})"
            args = sigs
        value = self.conn.execute(sql, args).fetchone()[0]
        return None if value is None else float(value)

    # --- the request cache (one answer per distinct request body) -------------------------------------------
    @staticmethod
    def _put_cache(c: sqlite3.Connection, row: dict[str, Any]) -> None:
        cols = ",".join(CACHE_FIELDS)
        marks = ",".join("?" for _ in CACHE_FIELDS)
        values = {"created_at": time.time(), **row}
        c.execute(f"INSERT OR REPLACE INTO request_cache ({cols}) VALUES ({marks})",
                  tuple(values.get(f) for f in CACHE_FIELDS))

    def put_cache(self, row: dict[str, Any]) -> None:
        with self.transaction() as c:
            self._put_cache(c, row)

    def cached(self, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The request cache's answers for ``hashes`` (``{hash: row}``; unknown hashes are left out)."""
        return self._rows_by("request_cache", "hash", hashes)

    # --- batches submitted to a batch API ----------------------------------------------------------------------
    def put_batch(self, row: dict[str, Any]) -> None:
        cols = ",".join(BATCH_FIELDS)
        marks = ",".join("?" for _ in BATCH_FIELDS)
        values = {"created_at": time.time(), **row}
        with self.transaction() as c:
            c.execute(f"INSERT OR REPLACE INTO batches ({cols}) VALUES ({marks})",
                      tuple(values.get(f) for f in BATCH_FIELDS))

    def batches(self, *, stage: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        """Stored batches (of ``stage``; ``open_only``: not imported yet), oldest first."""
        sql, args = "SELECT * FROM batches WHERE 1=1", []
        if stage is not None:
            sql, args = sql + " AND stage = ?", [stage]
        if open_only:
            sql += " AND imported_at IS NULL"
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY created_at, id", args)]

    def judge_cost(self, *, signature: str | None = None, signatures: Iterable[str] | None = None) -> float | None:
        """What the judge requests (of ``signature``, or of any of ``signatures``: a panel's judges) cost in USD;
        ``None`` when no row has a price."""
        sql, args = "SELECT SUM(cost_usd) FROM judgements", []
        wanted = [signature] if signature is not None else (list(signatures) if signatures is not None else None)
        if wanted is not None:
            sql += f" WHERE signature IN ({','.join('?' for _ in wanted)})"
            args = wanted
        value = self.conn.execute(sql, args).fetchone()[0]
        return None if value is None else float(value)

    def recent_judge_costs(self, n: int = 50) -> list[float]:
        """The prices of the last ``n`` priced judge requests, newest first."""
        return [float(r[0]) for r in self.conn.execute(
            "SELECT cost_usd FROM judgements WHERE cost_usd IS NOT NULL ORDER BY created_at DESC LIMIT ?", (n,))]

    def judge_meta(self) -> dict[str, Any]:
        """How the stored judgements were made: ``{"signature", "mode", "seed", ...}`` (empty when never judged)."""
        return self.get_meta("judge", {}) or {}

    def set_judge_meta(self, meta: dict[str, Any]) -> None:
        self.set_meta("judge", meta)

    # --- bench ------------------------------------------------------------------------------------------
    def put_bench(self, model: str, concurrency: int, result: dict[str, Any]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO bench (model, concurrency, result, created_at) VALUES (?,?,?,?)",
                      (model, concurrency, json.dumps(result, ensure_ascii=False), time.time()))

    def bench_results(self) -> list[tuple[str, int, dict[str, Any]]]:
        """``(model, concurrency, result)`` of every stored bench level, in the order they were measured."""
        rows = self.conn.execute("SELECT model, concurrency, result FROM bench ORDER BY created_at, concurrency")
        return [(r[0], int(r[1]), json.loads(r[2])) for r in rows]
