"""The multilingual reader on Chinese questions through the full pipeline: sources read, its
abstention bar, cost; beside what Chinese questions got before it (the extractive sentences).

Every question is retrieved as ``/query`` retrieves it (top 5) and the reader reads each of the top
sources once (``bench.reader``'s reads, scored the same way). The reader learnt from DRCD's
train-half articles, so every question here is from the test half:

- answerable: test-half questions asked of the whole DRCD collection; ``tune`` takes them from
  outside the 500 that docs/eval/drcd reports (``mmrag eval --split test --limit 500 --seed 13``),
  ``test`` is those 500;
- unanswerable: test-half questions asked of a collection of the train-half articles only (Chinese
  Wikipedia that does not hold the answer: what a question about another document looks like),
  split between tune and test.

    mmrag eval --dataset DRCD_dev.json --write-corpus /tmp/drcd     # then the train half's files to /tmp/drcd_train
    mmrag ingest /tmp/drcd -c drcd --data-dir D; mmrag ingest /tmp/drcd_train -c drcd_train --data-dir D
    python -m bench.reader_zh --data-dir D --drcd DRCD_dev.json --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

import numpy as np

from bench.reader import collect, score, threshold_for
from bench.report import write_section
from eval.datasets import load_dataset
from eval.metrics import exact_match, token_f1
from mmrag.machine import machine

EVAL_SEED, EVAL_N = 13, 500  # docs/eval/drcd's sample of the test half
PENALTIES = (0.0, 1.0, 2.0, 4.0)


def questions(drcd: Path, n: int) -> tuple[list, list]:
    test = load_dataset(drcd, split="test")
    held = random.Random(EVAL_SEED).sample(test.examples, EVAL_N)
    held_ids = {e.id for e in held}
    rng = random.Random(0)
    tune_ans = [(e.question, e.answers, "drcd", True) for e in rng.sample([e for e in test.examples if e.id not in held_ids], n)]
    test_ans = [(e.question, e.answers, "drcd", True) for e in held[:n]]
    un = [(e.question, e.answers, "drcd_train", False) for e in rng.sample(test.examples, n)]
    return tune_ans + un[: n // 2], test_ans + un[n // 2:]


def extractive_scores(services, examples: list[tuple], progress: bool) -> dict:
    """What the same answerable questions got before: the extractive sentences."""
    from tqdm import tqdm

    from app.generation.extractive import ExtractiveGenerator

    gen = ExtractiveGenerator(services.text)
    em = f1 = 0.0
    rows = [x for x in examples if x[3]]
    for q, refs, collection, _ in tqdm(rows, desc="extractive", disable=not progress):
        _, sources, _, _ = services.pipeline.retrieve(q, collection, 5, None)
        text = gen.generate(q, sources).text
        em, f1 = em + exact_match(text, refs), f1 + token_f1(text, refs)
    return {"em": em / max(1, len(rows)), "f1": f1 / max(1, len(rows))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, required=True, help="holds the collections 'drcd' and 'drcd_train'")
    ap.add_argument("--drcd", type=Path, required=True)
    ap.add_argument("--n", type=int, default=500, help="questions per group")
    ap.add_argument("--read", type=int, default=3, help="the most sources read")
    ap.add_argument("--min-answer-rate", type=float, default=0.92)
    ap.add_argument("--out", type=Path, help="markdown file to write the section into")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)

    from app.services import Services
    from mmrag.reader_e5 import E5SpanReader
    from mmrag.settings import Settings

    services = Services(Settings(data_dir=a.data_dir, llm_backend="reader"))
    cache = services.settings.model_cache
    readers = {"int8": E5SpanReader(cache, threads=1, int8=True), "fp32": E5SpanReader(cache, threads=1)}
    tune_q, test_q = questions(a.drcd, a.n)
    tune = collect(services, readers, tune_q, a.read, not a.no_progress)
    test = collect(services, readers, test_q, a.read, not a.no_progress)
    before = extractive_scores(services, test_q, not a.no_progress)

    grid = [(r, p) for r in range(1, a.read + 1) for p in PENALTIES]
    f1 = {rp: score(tune["int8"], (*rp, 0.0, 0.0), -1e9)["f1"] for rp in grid}
    read, pen = next(rp for rp in grid if f1[rp] >= max(f1.values()) - 0.002)
    setting = (read, pen, 0.0, 0.0)
    threshold = threshold_for(tune["int8"], setting, a.min_answer_rate)
    lines = [f"Command: `python -m bench.reader_zh --data-dir D --drcd DRCD_dev.json --n {a.n}` ({machine()})", "",
             f"Tune: {sum(r['answerable'] for r in tune['int8'])} answerable DRCD test-half questions outside docs/eval/drcd's "
             f"500, {sum(not r['answerable'] for r in tune['int8'])} unanswerable (test-half questions asked of a collection "
             f"of the train-half articles only). Test: the 500 of docs/eval/drcd and the other "
             f"{sum(not r['answerable'] for r in test['int8'])} unanswerable. Retrieval as /query (top 5; the English "
             "cross-encoder leaves Chinese candidates in the first stage's order). The reader: "
             "`packaged:reader-e5`, int8 as served.", "",
             "**What to read**, on tune by F1 with no abstention:", "", "| sources read | rank penalty | EM | F1 |", "|---|---|---|---|"]
    for r_, p_ in grid:
        s = score(tune["int8"], (r_, p_, 0.0, 0.0), -1e9)
        lines.append(f"| {r_} | {p_} | {s['em']:.3f} | {s['f1']:.3f} |")
    lines += ["", f"Chosen: {read} source(s), rank penalty {pen}; the bar on the margin that answers "
              f"{a.min_answer_rate:.0%} of answerable tune questions: {threshold:.2f} "
              f"(`MMRAG_READER_MULTILINGUAL_THRESHOLD`). The trade-off on test:", "",
              "| threshold | answer rate | answered precision (F1 >= 0.5) | EM | F1 | no-answer rate (unanswerable) |",
              "|---|---|---|---|---|---|"]
    for t in np.round(np.linspace(threshold - 4, threshold + 4, 9), 2):
        s = score(test["int8"], setting, float(t))
        mark = " **chosen**" if abs(t - threshold) < 1e-6 else ""
        lines.append(f"| {t:.2f}{mark} | {s['answer_rate']:.3f} | {s['answered_precision']:.3f} | {s['em']:.3f} | "
                     f"{s['f1']:.3f} | {s['no_answer_rate']:.3f} |")
    lines += ["", "On test's answerable questions, beside what Chinese questions got before (unanswered count as F1 0):", "",
              "| answer by | EM | F1 | answer rate | no-answer rate | reader p50 ms | p95 ms |", "|---|---|---|---|---|---|---|",
              f"| extractive sentences (before) | {before['em']:.3f} | {before['f1']:.3f} | 1.000 | 0.000 | | |"]
    for label in ("int8", "fp32"):
        s = score(test[label], setting, threshold)
        ms = sorted(sum(r["ms"][:read]) for r in tune[label] + test[label])
        lines.append(f"| reader-e5 {label} | {s['em']:.3f} | {s['f1']:.3f} | {s['answer_rate']:.3f} | "
                     f"{s['no_answer_rate']:.3f} | {statistics.median(ms):.1f} | {ms[int(0.95 * len(ms))]:.1f} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "reader-zh", "## The multilingual reader: Chinese answers (#20)\n\n" + text)


if __name__ == "__main__":
    main()
