"""A synthetic run for report tests: a store with generations, scores and judgements under DESIGN.md's names,
and a summary enriched with the fields that the metric, judge and serving stages add (judge, pairwise, GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlmpipe.analysis.aggregate import _aggregate
from vlmpipe.app.demo import demo_dir
from vlmpipe.core.config import config_from_dict
from vlmpipe.core.rundir import save_config
from vlmpipe.core.store import Store

PLANTED = ('<script>document.title="PWNED";'
           'document.body.appendChild(document.createElement("blink")).id="pwned"</script>')
MODELS = ["Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-AWQ", "Модель-2B", "ocr-baseline"]
ITEMS = [("failed_payment", "failed_payment.png"), ("cancelled_order", "cancelled_order.png"),
         ("blocked_card", "blocked_card.png"), ("lost_image", "missing.png")]
REPEATS = 2




def key(model: str, item: str, repeat: int) -> str:
    return f"{model}|{item}|{repeat}"


def answer(model: str, item: str, repeat: int) -> str:
    if model == "Модель-2B" and item == "cancelled_order" and repeat == 0:
        return "Hello! My order was cancelled, when will I get the money back? " + PLANTED
    if model == "ocr-baseline":
        return f"=HYPERLINK(\"http://x\") Заказ {item} ошибка 05"
    return f"Здравствуйте! Не праходит оплата заказа на сумму 43 рубля ({item}, повтор {repeat})."


def make_synthetic_run(tmp: Path, *, with_judge: bool = True) -> tuple[Any, Path]:
    run_dir = tmp / "runs" / "synthetic"
    cfg = config_from_dict({
        "name": "synthetic", "output_dir": str(tmp / "runs"),
        "dataset": {"path": str(demo_dir() / "data")},
        "models": [{"name": m, "provider": "ocr" if m == "ocr-baseline" else "openai"} for m in MODELS],
        "repeats": REPEATS,
    })
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir)
    store = Store(run_dir / "run.sqlite")
    store.put_items([{"id": i, "image": img, "reference": f"Эталон для {i}: оплата 20 588 ₽ не прошла.",
                      "facts": ["20 588 ₽"]} for i, img in ITEMS])
    store.put_models([(m, "candidate", {}) for m in MODELS])
    plan, scores = [], []
    for mi, m in enumerate(MODELS):
        for ii, (item, _) in enumerate(ITEMS):
            for r in range(REPEATS):
                k = key(m, item, r)
                plan.append((k, m, "candidate", item, r))
                failed = m == "Модель-2B" and item == "blocked_card" and r == 1
                frozen = m == "Qwen2-VL-7B-Instruct-AWQ" and ii == 0 and r == 0
                latency = 60.0 if frozen else 0.5 + 0.1 * mi + 0.05 * ii
                store.put_generation({
                    "key": k, "model": m, "role": "candidate", "item": item, "repeat": r,
                    "text": None if failed else answer(m, item, r),
                    "error": "timeout after 120 s" if failed else None, "error_kind": "timeout" if failed else None,
                    "latency_s": None if failed else latency, "ttft_s": None, "prompt_tokens": 100,
                    "completion_tokens": 40, "token_times": None})
                if failed:
                    continue
                off = m == "Модель-2B" and item == "cancelled_order" and r == 0
                scores += [
                    (k, "chrf", 60.0 - 10 * mi + ii, None),
                    (k, "rouge1_f", 0.5 - 0.05 * mi, None),
                    (k, "perplexity", 15.0 + mi, None),
                    (k, "spelling_errors", 1.0 if "праходит" in answer(m, item, r) else 0.0,
                     ["праходит"] if "праходит" in answer(m, item, r) else []),
                    (k, "language", None, "en" if off else "ru"),
                    (k, "off_language", 1.0 if off else 0.0, None),
                    (k, "hallucinated_numbers", 1.0 if "43" in answer(m, item, r) else 0.0,
                     ["43"] if "43" in answer(m, item, r) else []),
                    (k, "consistency", 90.0 - 20 * mi, None),
                ]
    store.set_plan(plan)
    store.put_scores(scores)
    if with_judge:
        store.put_judgements([
            {"key": f"j|{k}|{pos}", "generation_key": k, "model": m, "item": item, "repeat": r,
             "candidate_position": pos, "signature": "sig1", "candidate_score": 8.0 - MODELS.index(m),
             "reference_score": 9.0, "error": None, "attempts": 1,
             "explanation_candidate": "<img src=x onerror=alert(1)> The candidate names the order."
             if m == "Модель-2B" else "Кандидат точен.", "explanation_reference": "Эталон полон."}
            for k, m, _, item, r in plan for pos in ("A", "B")])
        store.put_judgements([{"key": "old", "generation_key": plan[0][0], "model": plan[0][1], "item": plan[0][3],
                                "repeat": 0, "candidate_position": "A", "signature": "old-signature",
                                "candidate_score": 1.0, "reference_score": 9.0}])
        store.set_judge_meta({"signature": "sig1", "mode": "both", "seed": 0, "model": "judge-mini"})
    store.close()
    return cfg, run_dir


FIELDS = {"chrf_mean": ("chrf", "mean"), "rouge1_f_mean": ("rouge1_f", "mean"),
          "perplexity_mean": ("perplexity", "mean"), "spelling_errors_sum": ("spelling_errors", "sum"),
          "off_language_rate": ("off_language", "rate"), "hallucinated_number_rate": ("hallucinated_numbers", "rate"),
          "consistency_mean": ("consistency", "mean")}


def enrich(summary: dict[str, Any], table: list[dict[str, Any]]) -> dict[str, Any]:
    """Add what the metric, judge and serving stages put in summary.json (DESIGN.md names)."""
    for name, m in summary["models"].items():
        ok = [r for r in table if r["model"] == name and r["error"] is None]
        for field_name, (col, how) in FIELDS.items():
            if m.get(field_name) is None:
                m[field_name] = _aggregate([r["metrics"][col][0] for r in ok if col in r["metrics"]], how)
    ratios = {"Qwen2-VL-7B-Instruct": (0.868, [0.834, 0.903]), "Qwen2-VL-7B-Instruct-AWQ": (0.832, [0.80, 0.86]),
              "Модель-2B": (0.596, [0.52, 0.66])}
    gpu = {"Qwen2-VL-7B-Instruct": 17.5, "Qwen2-VL-7B-Instruct-AWQ": 7.9, "Модель-2B": 5.1}
    for name, (ratio, ci) in ratios.items():
        m = summary["models"][name]
        m["judge"] = {"ratio_mean": ratio, "ratio_ci95": ci, "ratio_ci95_naive": [ratio - 0.02, ratio + 0.02],
                      "candidate_score_mean": 8.0, "reference_score_mean": 9.0, "win_rate": 0.2, "tie_rate": 0.3,
                      "loss_rate": 0.5, "n": 8, "n_failed": 0, "position_consistency": 0.9}
        m["gpu_memory_gb_peak"] = gpu[name]
    summary["bench"] = {"settings": {"levels": [1, 4]}, "models": {"Qwen2-VL-7B-Instruct": {
        "prefix_caching": "on", "levels": {
            "1": {"concurrency": 1, "requests": 8, "completed": 8, "error_rate": 0.0, "freezes": 0,
                  "request_throughput": 1.9, "output_tokens_per_s": 120.5, "ttft_s": {"p50": 0.081, "p99": 0.2},
                  "e2e_latency_s": {"p50": 0.52, "p99": 0.9}, "gpu_memory_gb_peak": 17.5},
            "4": {"concurrency": 4, "error": "server <b>died</b>\ntraceback"}}}}}
    summary["pairwise"] = {"judge.ratio": [
        {"a": "Qwen2-VL-7B-Instruct", "b": "Qwen2-VL-7B-Instruct-AWQ", "metric": "judge.ratio", "diff": 0.036,
         "ci95": [-0.01, 0.08], "p_a_better": 0.91, "n": 3},
        {"a": "Qwen2-VL-7B-Instruct", "b": "Модель-2B", "metric": "judge.ratio", "diff": 0.272,
         "ci95": [0.2, 0.34], "p_a_better": 1.0, "n": 3},
    ]}
    return summary


def patch_summary(monkeypatch: Any) -> None:
    """Make the report stage see the enriched summary (as it will once those stages are merged)."""
    import importlib

    writer = importlib.import_module("vlmpipe.render.writer")  # (vlmpipe.render is also the API function)
    from vlmpipe.analysis.aggregate import build_summary, generation_table

    monkeypatch.setattr(writer, "build_summary",
                        lambda cfg, store: enrich(build_summary(cfg, store), generation_table(store)))
