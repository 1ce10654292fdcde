"""Writes metrics.json, predictions.jsonl, report.md and PNG plots for an evaluation run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from eval.metrics import doc_ranking, length_in_words
from eval.run import RETRIEVAL_KEYS, Prediction


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def write_outputs(out: Path, dataset_name: str, results: dict[str, tuple[dict, list[Prediction]]], command: str, machine: str) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    main_mode = list(results)[-1]
    metrics, preds = results[main_mode]
    summary = {**metrics, "dataset": dataset_name, "mode": main_mode,
               "ablation": {m: {k: r[0][k] for k in RETRIEVAL_KEYS} for m, r in results.items()}}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for p in preds:
            fh.write(json.dumps({"id": p.id, "question": p.question, "answer": p.answer, "references": p.references,
                                 "relevant_documents": p.relevant, "retrieved": p.retrieved, "scores": p.scores,
                                 "answer_kind": p.answer_kind,
                                 "timings_ms": p.timings}, ensure_ascii=False) + "\n")
    plots = _plots(out, results)
    _markdown(out, dataset_name, summary, results, plots, command, machine)
    return summary


def _plots(out: Path, results) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []

    def figure(name: str, draw, height: float = 3.4) -> None:
        fig, ax = plt.subplots(figsize=(5.5, height))
        draw(ax)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)

    def recall_curves(ax) -> None:
        for mode, (_, preds) in results.items():
            judged = [p for p in preds if p.relevant]
            curve = []
            for k in range(1, 11):
                hits = [bool(set(doc_ranking([r["file_name"] for r in p.retrieved])[:k]) & set(p.relevant)) for p in judged]
                curve.append(statistics.fmean(hits) if hits else 0)
            ax.plot(range(1, 11), curve, marker="o", label=mode)
        ax.set(xlabel="k", ylabel="recall@k", title="Recall@k by retrieval mode", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend()

    main_preds = list(results.values())[-1][1]

    def top_hit_scores(ax) -> None:
        right = [p.retrieved[0]["score"] for p in main_preds if p.retrieved and p.retrieved[0]["file_name"] in p.relevant]
        wrong = [p.retrieved[0]["score"] for p in main_preds if p.retrieved and p.retrieved[0]["file_name"] not in p.relevant]
        ax.hist([right, wrong], bins=30, label=["top hit relevant", "top hit not relevant"], stacked=True)
        ax.set(xlabel="fused score of the top hit", ylabel="questions", title="Top-hit score distribution")
        ax.legend()

    def latency(ax) -> None:
        for stage in ("total_ms", "generate_ms"):
            vals = [p.timings[stage] for p in main_preds if stage in p.timings]
            if vals:
                ax.hist(vals, bins=40, alpha=0.7, label=stage.removesuffix("_ms"))
        ax.set(xlabel="milliseconds", ylabel="questions", title="Latency per question")
        ax.legend()

    def by_length(ax) -> None:
        buckets = _length_buckets(main_preds, lambda p: length_in_words(p.question))
        ax.bar([b[0] for b in buckets], [b[2].get("mrr@10", 0) for b in buckets])
        ax.set(xlabel="question length (words)", ylabel="MRR@10", title="MRR@10 by question length", ylim=(0, 1))

    figure("recall_at_k.png", recall_curves, height=3.6)
    figure("score_distribution.png", top_hit_scores)
    figure("latency.png", latency)
    figure("by_question_length.png", by_length)
    return names


def _length_buckets(preds: list[Prediction], length) -> list[tuple[str, int, dict]]:
    values = sorted(length(p) for p in preds)
    if not values:
        return []
    edges = [values[int(len(values) * q)] for q in (0.25, 0.5, 0.75)]
    bounds = [(0, edges[0]), (edges[0] + 1, edges[1]), (edges[1] + 1, edges[2]), (edges[2] + 1, 10**9)]
    out = []
    for lo, hi in bounds:
        group = [p for p in preds if lo <= length(p) <= hi]
        if not group:
            continue
        keys = [k for k in ("mrr@10", "recall@10", "bleu", "meteor", "f1") if all(k in p.scores for p in group)]
        label = f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"
        out.append((label, len(group), {k: statistics.fmean(p.scores[k] for p in group) for k in keys}))
    return out


def _markdown(out: Path, name: str, summary: dict, results, plots: list[str], command: str, machine: str) -> None:
    main_preds = list(results.values())[-1][1]
    lines = [f"# Evaluation report: {name}", "", f"Command: `{command}`", "", f"Machine: {machine}", "",
             f"{summary['questions']} questions, mode `{summary['mode']}`.", "", "## Metrics", "", "| metric | value |", "|---|---|"]
    for k in (*RETRIEVAL_KEYS, "bleu", "meteor", "exact_match", "f1"):
        lines.append(f"| {k} | {_fmt(summary.get(k))} |")
    lines += ["", "BLEU is sacrebleu's corpus BLEU (0-100); METEOR is NLTK's `meteor_score` (0-1), averaged over questions. "
              "Answers are scored without their [n] citation markers.", ""]
    if summary.get("answers_by_kind"):
        lines += ["| answer kind | questions | exact_match | f1 |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['questions']} | {_fmt(v['exact_match'])} | {_fmt(v['f1'])} |" for k, v in summary["answers_by_kind"].items()]
        lines.append("")
    for axis, groups in (summary.get("answers_by_length") or {}).items():
        lines += [f"| {axis} length | questions | exact_match | f1 |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['questions']} | {_fmt(v['exact_match'])} | {_fmt(v['f1'])} |" for k, v in groups.items()]
        lines.append("")
    if summary.get("abstention"):
        a = summary["abstention"]
        lines += ["## Abstention", "", "| answerable | answer rate | answered precision (F1 >= 0.5) | answered F1 | unanswerable | "
                  "no-answer rate |", "|---|---|---|---|---|---|",
                  f"| {a['answerable']} | {_fmt(a['answer_rate'])} | {_fmt(a['answered_precision'])} | {_fmt(a['answered_f1'])} | "
                  f"{a['unanswerable']} | {_fmt(a['no_answer_rate'])} |", ""]
    lines += [
              "## Ablation (retrieval)", "", "| mode | " + " | ".join(RETRIEVAL_KEYS) + " |", "|---|" + "---|" * len(RETRIEVAL_KEYS)]
    for mode, vals in summary["ablation"].items():
        lines.append(f"| {mode} | " + " | ".join(_fmt(vals[k]) for k in RETRIEVAL_KEYS) + " |")
    if summary.get("page_hit@5") is not None:
        lines += ["", "## Pages (a hit: an evidence page among the first k distinct pages retrieved)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(summary.get(k))} |" for k in ("page_hit@1", "page_hit@5", "page_hit@10")]
        lines += ["", "| evidence source | questions | page_hit@5 |", "|---|---|---|"]
        lines += [f"| {src} | {v['questions']} | {_fmt(v['page_hit@5'])} |" for src, v in summary.get("page_hit@5_by_source", {}).items()]
        if summary.get("page_hit@5_by_unit_type"):
            lines += ["", "By unit type: page_hit@5 when only units of that type are ranked (what each kind finds on its own).", "",
                      "| unit type | page_hit@5 |", "|---|---|"]
            lines += [f"| {kind} | {_fmt(v)} |" for kind, v in summary["page_hit@5_by_unit_type"].items()]
    if summary.get("by_modality"):
        lines += ["", "## By modality (ranking restricted to units of one type)", "", "| type | " + " | ".join(RETRIEVAL_KEYS) + " |",
                  "|---|" + "---|" * len(RETRIEVAL_KEYS)]
        for kind, vals in summary["by_modality"].items():
            lines.append(f"| {kind} | " + " | ".join(_fmt(vals[k]) for k in RETRIEVAL_KEYS) + " |")
    lines += ["", "## Latency (ms)", "", "| stage | mean | p50 | p95 | p99 |", "|---|---|---|---|---|"]
    for stage, s in summary["latency_ms"].items():
        if s:
            lines.append(f"| {stage.removesuffix('_ms')} | {s['mean']} | {s['p50']} | {s['p95']} | {s['p99']} |")
    for title, length in (("question length (words; CJK characters)", lambda p: length_in_words(p.question)),
                          ("reference answer length (words; CJK characters)", lambda p: length_in_words((p.references or [""])[0]))):
        lines += ["", f"## By {title}", "", "| bucket | questions | metrics |", "|---|---|---|"]
        for label, n, vals in _length_buckets(main_preds, length):
            lines.append(f"| {label} | {n} | " + ", ".join(f"{k} {v:.3f}" for k, v in vals.items()) + " |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    failures = [p for p in main_preds if p.relevant and p.scores.get("mrr@10", 1) == 0][:10]
    lines += ["", f"## Worst failures ({sum(1 for p in main_preds if p.relevant and p.scores.get('mrr@10', 1) == 0)} questions with no relevant document in the top 10; first 10)", ""]
    for p in failures:
        got = ", ".join(f"{r['file_name']} ({r['score']:.2f})" for r in p.retrieved[:3])
        lines += [f"- **{p.question}** — relevant: {', '.join(p.relevant)}; retrieved: {got}" + (f"; answered: {p.answer!r}" if p.answer else "")]
    wrong = [p for p in main_preds if p.scores.get("recall@1") and p.scores.get("f1") == 0]
    if wrong:
        lines += ["", f"## Answer failures ({len(wrong)} questions whose document ranked first, answered with F1 0; first 10)", ""]
        lines += [f"- **{p.question}** — expected {p.references[0]!r}; answered ({p.answer_kind}): {p.answer!r}" for p in wrong[:10]]
    (out / "report.md").write_text("\n".join(lines) + "\n")
