"""The end-of-run ranking table: ranked by quality, only the columns the run has, fits the terminal."""

from __future__ import annotations

from rich.console import Console

from vlmpipe.render.console import failures_note, ranking_table


def _summary() -> dict:
    def m(ratio: float | None, chrf: float, name_gpu: float | None) -> dict:
        return {"role": "candidate", "n": 50, "n_errors": 0, "latency_s": {"p50": 0.7, "max": 1.2},
                "chars_per_s_mean": 200.0, "chrf_mean": chrf, "off_language_rate": 0.0, "bleurt_mean": None,
                "judge": None if ratio is None else {"ratio_mean": ratio, "ratio_ci95": [ratio - 0.03, ratio + 0.03]},
                "gpu_memory_gb_peak": name_gpu}
    return {"run": {"name": "r", "items": 10, "repeats": 5},
            "models": {"Qwen2-VL-2B-Instruct-AWQ": m(0.536, 30.0, 4.0), "Qwen2-VL-7B-Instruct": m(0.868, 45.0, 17.0),
                       "ocr-baseline": m(None, 38.0, None)}}


def _render(width: int) -> list[str]:
    console = Console(width=width, record=True)
    console.print(ranking_table(_summary(), width=width))
    return console.export_text().splitlines()


def test_ranked_by_judge_ratio_with_intervals_and_all_columns_when_wide() -> None:
    lines = _render(200)
    rows = [ln for ln in lines if ln.strip().startswith(("Qwen", "ocr"))]
    assert [r.split()[0] for r in rows] == ["Qwen2-VL-7B-Instruct", "Qwen2-VL-2B-Instruct-AWQ", "ocr-baseline"]
    assert "0.868 [0.838, 0.898]" in rows[0] and "—" in rows[2]
    header = next(ln for ln in lines if "model" in ln)
    for title in ("judge [95%]", "chrF", "off-lang", "p50 s", "max s", "ch/s", "GPU GB"):
        assert title in header
    assert "BLEURT" not in header  # null everywhere: no column


def test_narrow_terminal_drops_columns_not_names() -> None:
    lines = _render(72)
    assert all(len(ln) <= 72 for ln in lines)
    assert "…" not in "".join(lines)
    header = next(ln for ln in lines if "model" in ln)
    assert "judge [95%]" in header and "chrF" in header and "GPU GB" not in header
    assert any("Qwen2-VL-2B-Instruct-AWQ" in ln for ln in lines)


def test_a_narrow_table_keeps_its_title_on_one_line() -> None:
    summary = {"run": {"name": "down", "items": 2, "repeats": 2},
               "models": {"dead": {"role": "candidate", "n": 4, "n_errors": 4, "latency_s": None}}}
    console = Console(width=80, record=True)
    console.print(ranking_table(summary, width=80))
    lines = [ln.strip() for ln in console.export_text().splitlines() if ln.strip()]
    assert lines[0] == "run down: 2 items × 2 repeats"  # was wrapped: "run down: 2 items" / "× 2 repeats"
    assert lines[1].split() == ["model", "n", "err"] and lines[-1].split() == ["dead", "4", "4"]


def test_compare_table_names_every_model_and_field_whole_in_80_columns() -> None:
    from vlmpipe.render.console import compare_table

    result = {"models": {name: {"hallucinated_number_rate": {"a": 0.02, "b": 0.0, "diff": -0.02},
                                "judge.ratio_mean": {"a": 0.868, "b": 0.852, "diff": -0.016,
                                                     "intervals_overlap": True}}
                         for name in ("Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8")}}
    console = Console(width=80, record=True)
    console.print(compare_table(result))
    lines = console.export_text().splitlines()
    assert all(len(ln) <= 80 for ln in lines) and "…" not in "".join(lines)  # names were cut to "Qwen2-VL-7B-Ins…"
    assert [ln.strip() for ln in lines if ln.startswith("Qwen")] == [
        "Qwen2-VL-7B-Instruct: B − A", "Qwen2-VL-7B-Instruct-GPTQ-Int8: B − A"]
    rows = [ln.strip("│ ").split() for ln in lines if ln.startswith("│")]
    assert ["hallucinated_number_rate", "│", "0.02", "│", "0", "│", "-0.02"] in rows
    assert ["judge.ratio_mean", "│", "0.868", "│", "0.852", "│", "-0.016", "│", "overlap"] in rows


def test_a_run_with_failures_says_which_in_one_line() -> None:
    summary = _summary()
    assert failures_note(summary) is None
    summary["run"]["items_failed"] = 1
    summary["models"]["ocr-baseline"]["n_errors"] = 3
    summary["models"]["Qwen2-VL-7B-Instruct"]["n_errors"] = 2
    summary["models"]["Qwen2-VL-7B-Instruct"]["judge"]["n_failed"] = 4
    assert failures_note(summary) == ("completed with failures: 1 screenshot(s) could not be used, 5 generation(s) "
                                      "failed, 4 judgement(s) failed (counted per model in summary.json and the "
                                      "report)")
