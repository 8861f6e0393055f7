"""A thousand-screenshot run: wall time and peak memory of ``vlmpipe import``, ``score`` and ``report``.

Builds a synthetic run of N screenshots × 8 models × 5 repeats (40,000 generations at N = 1000): PNG screenshots
drawn with Pillow (Russian text, order numbers, amounts, dates — work for the OCR of the grounding metric), and a
CSV of answers in Russian with numbers — some in English, some misspelled, some with an invented number, a few
refusals and a few failed rows. Then runs each stage in its own process:

    import    vlmpipe import --format table --results gens.csv --images shots/ --out RUN
    score     the score stage alone (``score_run``, what ``vlmpipe score`` does before it writes the report):
              the model-free default metrics, the OCR-based grounding, each item's stability
    report    vlmpipe report RUN
    vlmpipe-score (with --cli-score, on a fresh copy of the imported run) vlmpipe score RUN: score, then report

with ``VLMPIPE_DEFAULT_METRICS_EXCLUDE=perplexity,bleurt,bertscore`` (no model-based metric). For each stage it
prints the wall time, the peak resident memory of the stage's process tree (the sum over the process and its
workers and Tesseract processes, sampled every 50 ms) and the largest single process (``getrusage`` of the child),
then opens the report's ``index.html`` in headless Chromium (when installed): its load time, console errors, and
what paging and filtering by a flag show. The figures come last:

    stage=import seconds=… peak_rss_mb=…
    …
    index_html_mb=… chromium_open_s=… chromium_errors=0

    python benchmarks/scale.py 1000 [--models 8] [--repeats 5] [--keep DIR] [--cli-score]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXCLUDE = "perplexity,bleurt,bertscore"
#: The score stage alone, as ``vlmpipe score`` runs it before the report.
SCORE_STAGE = ("import sys; from vlmpipe.app.pipeline import existing_store, run_config; "
               "from vlmpipe.stages.score import score_run; cfg = run_config(sys.argv[1]); "
               "store = existing_store(sys.argv[1]).__enter__(); score_run(cfg, store, show_progress=False)")

MODELS = ["Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8", "Qwen2-VL-7B-Instruct-GPTQ-Int4",
          "Qwen2-VL-7B-Instruct-AWQ", "Qwen2-VL-2B-Instruct", "Qwen2-VL-2B-Instruct-GPTQ-Int8",
          "Qwen2-VL-2B-Instruct-GPTQ-Int4", "Qwen2-VL-2B-Instruct-AWQ"]

PROBLEMS = [
    ("заказ отменили", "мой заказ {order} на сумму {amount} ₽ отменили без объяснения причин",
     "my order {order} for {amount} roubles was cancelled without any reason"),
    ("не проходит оплата", "не проходит оплата заказа {order} картой на {amount} ₽, пишет ошибку {code}",
     "the payment of {amount} roubles for order {order} fails with error {code}"),
    ("не пришёл возврат", "не пришёл возврат {amount} ₽ за заказ {order}, оформленный {date}",
     "the refund of {amount} roubles for order {order} placed on {date} has not arrived"),
    ("доставка задерживается", "доставка заказа {order} задерживается, обещали привезти {date}",
     "the delivery of order {order} is late, it was promised for {date}"),
    ("списали дважды", "с карты дважды списали {amount} ₽ за заказ {order}",
     "{amount} roubles were charged twice for order {order}"),
    ("не приходит код", "не приходит код подтверждения на номер {phone}, заказ {order}",
     "the confirmation code does not arrive at {phone}, order {order}"),
]
GREETINGS = ["Здравствуйте", "Добрый день", "Здравствуйте!", "Добрый вечер", "Привет"]
ASKS = ["помогите разобраться", "что делать?", "подскажите, пожалуйста, что случилось",
        "прошу вернуть деньги", "помогите, пожалуйста", "когда решите вопрос?", "жду ответа"]
TAILS = ["", " Спасибо.", " Заранее спасибо!", " Очень жду.", ""]
MISSPELL = {"заказ": "заказь", "помогите": "памагите", "пожалуйста": "пожалуста", "оплата": "аплата",
            "доставка": "дастафка", "подтверждения": "патверждения", "спасибо": "спасиба"}
REFUSALS = ["Извините, но я не могу помочь с этим запросом.", "Я не могу распознать текст на этом изображении."]


@dataclass
class Shot:
    id: str
    problem: int
    values: dict[str, str]


def _values(rng: random.Random) -> dict[str, str]:
    amount = rng.randint(150, 99_999)
    return {
        "order": f"{rng.randint(10**7, 10**8 - 1):08d}-{rng.randint(1, 9999):04d}",
        "amount": f"{amount:,}".replace(",", " "),
        "code": f"E{rng.randint(100, 999)}",
        "date": f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2024",
        "phone": f"+7 9{rng.randint(10, 99)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
    }


def draw_screenshot(path: Path, shot: Shot, rng: random.Random) -> None:
    """A phone-sized support screen: a header, the order's fields, a status line, noise lines."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 26)
        small = ImageFont.truetype("DejaVuSans.ttf", 20)
    except OSError:  # no DejaVu here: Pillow's bitmap font still gives Tesseract some text
        font = small = ImageFont.load_default()
    im = Image.new("RGB", (540, 960), (248, 249, 251))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 540, 70), fill=(0, 91, 255))
    d.text((20, 20), "Мои заказы", font=font, fill=(255, 255, 255))
    v = shot.values
    title = PROBLEMS[shot.problem][0].capitalize()
    lines = [(title, font), (f"Заказ № {v['order']}", font), (f"Сумма: {v['amount']} ₽", font),
             (f"Дата: {v['date']}", small), (f"Телефон: {v['phone']}", small),
             (f"Код ошибки: {v['code']}", small)]
    lines += [(rng.choice(["Доставка курьером", "Пункт выдачи", "Оплата картой", "Баллы не начислены",
                           "Статус: отменён", "Статус: в пути"]), small) for _ in range(3)]
    y = 100
    for text, f in lines:
        d.text((24, y), text, font=f, fill=(20, 20, 20))
        y += 52
    d.rectangle((24, 860, 516, 920), fill=(230, 234, 240))
    d.text((40, 875), "Написать в поддержку", font=small, fill=(0, 91, 255))
    im.save(path, "PNG")


def answer(shot: Shot, model: int, rng: random.Random) -> tuple[str, str | None]:
    """One model's answer to a screenshot: ``(text, error)``; weaker models (higher index) err more."""
    weak = model / (len(MODELS) - 1)  # 0 for the 7B, 1 for the 2B AWQ
    r = rng.random()
    if r < 0.01 + 0.01 * weak:
        return "", rng.choice(["timeout", "HTTP 500", "connection reset"])
    _title, ru, en = PROBLEMS[shot.problem]
    values = dict(shot.values)
    if rng.random() < 0.05 + 0.10 * weak:  # an invented number
        values["amount"] = f"{rng.randint(10, 999)}"
    if rng.random() < 0.02 + 0.15 * weak * weak:
        return f"Hello, {en.format(**values)}. Please help me.", None
    if rng.random() < 0.01 + 0.02 * weak:
        return rng.choice(REFUSALS), None
    ask = rng.choice(ASKS)
    text = f"{rng.choice(GREETINGS)}, {ru.format(**values)}, {ask}{'' if ask.endswith('?') else '.'}{rng.choice(TAILS)}"
    if rng.random() < 0.05 + 0.20 * weak:
        word = rng.choice([w for w in MISSPELL if w in text] or ["заказ"])
        text = text.replace(word, MISSPELL[word], 1)
    return text, None


def make_run_input(folder: Path, n: int, models: int, repeats: int, seed: int = 15) -> tuple[Path, Path]:
    """The screenshots folder and the CSV of generations (with latencies and references)."""
    rng = random.Random(seed)
    shots_dir = folder / "shots"
    shots_dir.mkdir(parents=True, exist_ok=True)
    shots = [Shot(f"s{i:05d}", rng.randrange(len(PROBLEMS)), _values(rng)) for i in range(n)]
    for s in shots:
        draw_screenshot(shots_dir / f"{s.id}.png", s, rng)
    table = folder / "generations.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "item", "image", "repeat", "text", "error", "latency_s", "ttft_s", "reference"])
        for m in range(models):
            name = MODELS[m % len(MODELS)] + ("" if m < len(MODELS) else f"-{m // len(MODELS)}")
            for s in shots:
                reference = f"Здравствуйте, {PROBLEMS[s.problem][1].format(**s.values)}, помогите разобраться."
                for rep in range(repeats):
                    text, error = answer(s, m % len(MODELS), rng)
                    latency = round(rng.lognormvariate(0.3 + 0.1 * (m % 4), 0.4), 3)
                    w.writerow([name, s.id, f"{s.id}.png", rep, text, error or "", latency,
                                round(latency * rng.uniform(0.05, 0.2), 3), reference])
    return table, shots_dir


@dataclass
class Measured:
    seconds: float
    peak_tree_mb: float  # the process and its workers together, sampled
    peak_single_mb: float  # the largest single process (getrusage)
    rc: int


def run_measured(cmd: list[str], env: dict[str, str]) -> Measured:
    """Run ``cmd`` in its own process; its wall time and peak memory."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the dev tools
        psutil = None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        if psutil is None:
            return
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total = 0
            try:
                for q in [p, *p.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += q.memory_info().rss
            except psutil.Error:
                break
            peak = max(peak, total)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    single = usage.ru_maxrss / 1024  # KiB on Linux
    return Measured(seconds, max(peak / 2**20, single), single, proc.returncode)


#: Waits until the gallery has drawn what its controls asked for (it unpacks the packed cards first).
DRAWN = """new Promise(function (done) {
  (function poll() { var s = document.getElementById('gallery-status');
    if (s && s.textContent && s.textContent.indexOf('unpacking') < 0) { done(s.textContent); }
    else { setTimeout(poll, 20); } })(); })"""


def open_in_chromium(index: Path, tmp: Path) -> tuple[float, list[str]] | None:
    """Seconds from navigation to the load event of ``index`` in headless Chromium, and its errors; prints what
    paging to the next page and filtering by a flag show, and how long they take."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from browser import Chromium, chromium_path
    except ImportError:
        return None
    if chromium_path() is None:
        return None
    with Chromium(tmp, timeout_s=120) as browser:
        start = time.perf_counter()
        page = browser.open(index)
        seconds = time.perf_counter() - start - 0.3  # open() waits 0.3 s for late console messages
        shown = browser.evaluate("document.querySelectorAll('#gallery-cards > section.card').length")
        total = browser.evaluate("JSON.parse(document.getElementById('gallery-index').textContent).cards.length")
        print(f"chromium: {shown} of {total} gallery cards on the first page")
        t0 = time.perf_counter()
        status = browser.evaluate("document.getElementById('gallery-next').click(); " + DRAWN)
        print(f"chromium: next page ({time.perf_counter() - t0:.2f} s, unpacking the packed cards): {status}")
        t0 = time.perf_counter()
        status = browser.evaluate("var f = document.getElementById('gallery-flag'); f.value = f.options[2].value;"
                                  " f.dispatchEvent(new Event('change')); " + DRAWN)
        label = browser.evaluate("document.getElementById('gallery-flag').selectedOptions[0].textContent")
        visible = browser.evaluate("Array.from(document.querySelectorAll('#gallery-cards .gen'))"
                                   ".filter(g => g.offsetParent !== null).length")
        print(f"chromium: filter {label!r} ({time.perf_counter() - t0:.2f} s): {status}; {visible} answers visible")
        return seconds, page.errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="screenshots")
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the run here and keep it (default: a temporary folder)")
    ap.add_argument("--cli-score", action="store_true",
                    help="also time `vlmpipe score` (score stage and report in one process) on a copy of the run")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vlmpipe-scale-")
    folder = args.keep or Path(tmp)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        table, shots = make_run_input(folder, args.n, args.models, args.repeats)
        run = folder / "run"
        if run.exists():
            shutil.rmtree(run)
        print(f"input: {args.n} screenshots × {args.models} models × {args.repeats} repeats = "
              f"{args.n * args.models * args.repeats} generations ({time.perf_counter() - t0:.1f} s to build)")
        env = {**os.environ, "VLMPIPE_DEFAULT_METRICS_EXCLUDE": EXCLUDE,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
        cli = [sys.executable, "-m", "vlmpipe.app.cli"]
        copy = folder / "run-cli"
        stages = {
            "import": [*cli, "import", "--format", "table", "--results", str(table), "--images", str(shots),
                       "--out", str(run)],
            "score": [sys.executable, "-c", SCORE_STAGE, str(run)],
            "report": [*cli, "report", str(run)],
        }
        if args.cli_score:
            stages["vlmpipe-score"] = [*cli, "score", str(copy), "--quiet"]
        figures = {}
        for name, cmd in stages.items():
            if name == "score" and args.cli_score:
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(run, copy)
            m = run_measured(cmd, env)
            if m.rc not in (0, 1):  # 1: completed with failed generations (the planted ones)
                raise SystemExit(f"{name} failed with exit code {m.rc}")
            figures[name] = m
            print(f"{name}: {m.seconds:.1f} s, peak {m.peak_tree_mb:.0f} MB "
                  f"(largest process {m.peak_single_mb:.0f} MB)")
        index = run / "report" / "index.html"
        size_mb = index.stat().st_size / 2**20
        images = list((run / "report" / "images").glob("*")) if (run / "report" / "images").is_dir() else []
        print(f"report: index.html {size_mb:.2f} MB, {len(images)} full-size images in report/images/")
        opened = open_in_chromium(index, Path(tmp))
        for name, m in figures.items():
            print(f"stage={name} seconds={m.seconds:.2f} peak_rss_mb={m.peak_tree_mb:.0f} "
                  f"largest_process_mb={m.peak_single_mb:.0f}")
        if opened is None:
            print(f"index_html_mb={size_mb:.2f} chromium=not-installed")
        else:
            seconds, errors = opened
            for e in errors[:5]:
                print(f"chromium error: {e}")
            print(f"index_html_mb={size_mb:.2f} chromium_open_s={seconds:.2f} chromium_errors={len(errors)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
