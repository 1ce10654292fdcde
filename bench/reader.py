"""The reader through the full pipeline: how many sources to read, when to abstain, what it costs.

Every question is retrieved as ``/query`` retrieves it (fused + rerank, top 5) and the reader reads
each of the top sources once (each timed alone); each source's best span, its "no answer" score
and the top source's reranker score are kept, so every setting (sources read, rank penalty,
relevance weight, threshold) is scored from the same reads. Three kinds of question:

- answerable: SQuAD dev questions asked of the SQuAD collection;
- unanswerable: SQuAD questions asked of the CoQA collection, CoQA questions asked of the SQuAD
  collection (what a user's question about another corpus looks like), and CoQA's "unknown" turns
  asked of their own collection (CoQA questions from its test-half stories only: the reader was
  trained on the other half);
- everything is chosen on the ``tune`` half (SQuAD questions outside the 500 of docs/eval/squad,
  and half of the unanswerable ones) and reported on the other half.

    python -m bench.reader --data-dir /tmp/evdata --squad ../shared/data/squad/squaddev_v1.1.json \\
        --coqa ../shared/data/coqa/coqa.test.json --reads /tmp/reads.json --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np

from bench.report import write_section
from eval.datasets import load_dataset
from eval.metrics import exact_match, token_f1
from mmrag.machine import machine

EVAL_SEED, EVAL_N = 13, 500  # the sample docs/eval/squad reports (mmrag eval --limit 500 --seed 13)
PENALTIES = (0.0, 1.0, 2.0, 4.0)
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)
# docs/benchmarks.md sections by reader (the English reader keeps the section README links to)
SECTIONS = {"packaged:reader-minilm": ("reader", "The reader"),
            "packaged:reader-e5": ("reader-e5", "The multilingual reader on English questions")}
SAME_F1 = 0.002  # settings this close in F1 are a tie, and the cheaper one (fewer sources read) wins


def collect(services, readers: dict, questions: list[tuple[str, list[str], str, bool]], read: int,
            progress: bool) -> dict[str, list[dict]]:
    """For each (question, references, collection, answerable) and each reader: its span in each of
    the top sources, retrieved once."""
    from tqdm import tqdm

    from app.generation.reader import reading_text

    rows: dict[str, list[dict]] = {label: [] for label in readers}
    for q, refs, collection, answerable in tqdm(questions, desc="read", unit="q", disable=not progress):
        _, sources, _, _ = services.pipeline.retrieve(q, collection, 5, None)
        sources = [s for s in sources[:read] if s.text.strip()]
        texts = [reading_text(s)[0] for s in sources]
        relevance = sources[0].features.get("cross_encoder") if sources else None
        for label, reader in readers.items():
            spans, ms = [], []
            for text in texts:
                t0 = time.perf_counter()
                sp = reader.read(q, [text])[0]
                ms.append((time.perf_counter() - t0) * 1000)
                spans.append(None if sp is None else (sp.score, sp.null, text[sp.start:sp.end]))
            rows[label].append({"q": q, "refs": refs, "answerable": answerable, "ms": ms, "spans": spans,
                                "relevance": relevance})
    return rows


def decide(row: dict, read: int, penalty: float, weight: float, center: float) -> tuple[float, str]:
    """(confidence, answer) under a setting, as ReaderGenerator decides."""
    spans = [(i, s) for i, s in enumerate(row["spans"][:read]) if s is not None]
    if not spans:
        return -1e9, ""
    _, best = max(spans, key=lambda x: x[1][0] - penalty * x[0])
    null = min(s[1] for _, s in spans)
    relevance = center if row["relevance"] is None else row["relevance"]
    return best[0] - null + weight * (relevance - center), best[2]


def score(rows: list[dict], setting: tuple, threshold: float) -> dict:
    ans = [r for r in rows if r["answerable"]]
    un = [r for r in rows if not r["answerable"]]
    em = f1 = 0.0
    given, right = 0, 0
    for r in ans:
        sure, text = decide(r, *setting)
        if sure >= threshold:
            given += 1
            e, f = exact_match(text, r["refs"]), token_f1(text, r["refs"])
            em, f1, right = em + e, f1 + f, right + (f >= 0.5)
    abstained = sum(decide(r, *setting)[0] < threshold for r in un)
    return {"em": em / max(1, len(ans)), "f1": f1 / max(1, len(ans)), "answer_rate": given / max(1, len(ans)),
            "answered_precision": right / max(1, given), "no_answer_rate": abstained / max(1, len(un))}


def threshold_for(rows: list[dict], setting: tuple, answer_rate: float) -> float:
    """The highest threshold that still answers ``answer_rate`` of the answerable questions."""
    sure = sorted(decide(r, *setting)[0] for r in rows if r["answerable"])
    return float(sure[int((1 - answer_rate) * len(sure))]) if sure else 0.0


def questions(squad_path: Path, coqa_path: Path, n: int) -> tuple[list, list]:
    # CoQA's test-half stories only: the reader learnt from the train half's (eval.datasets.coqa_split)
    squad, coqa = load_dataset(squad_path), load_dataset(coqa_path, "all", "test")
    held_ids = {e.id for e in random.Random(EVAL_SEED).sample(squad.examples, EVAL_N)}
    rng = random.Random(0)
    others = [e for e in squad.examples if e.id not in held_ids]
    tune_ans = [(e.question, e.answers, "squad", True) for e in rng.sample(others, n)]
    test_ans = [(e.question, e.answers, "squad", True) for e in squad.examples if e.id in held_ids][:n]
    # a question is only "unanswerable" if the other corpus does not hold it: SQuAD (Wikipedia) and
    # CoQA (stories, news, Wikipedia too) overlap a little, which this leaves in as real-world noise
    foreign = ([(e.question, e.answers, "coqa", False) for e in rng.sample(squad.examples, n)]
               + [(e.question, e.answers, "squad", False)
                  for e in rng.sample([x for x in coqa.examples if not x.meta.get("unanswerable")], n // 2)])
    unknown = [(e.question, e.answers, "coqa", False) for e in coqa.examples if e.meta.get("unanswerable")]
    un = foreign + unknown
    rng.shuffle(un)
    return tune_ans + un[: len(un) // 2], test_ans + un[len(un) // 2:]


def report(tunes: dict, tests: dict, n: int, read_max: int, min_answer_rate: float, calibrate: str = "fp32",
           served: str = "", readers: str = "") -> str:
    tune, test = tunes[calibrate], tests[calibrate]
    answerable_relevance = [r["relevance"] for r in tune if r["answerable"] and r["relevance"] is not None]
    center = float(np.median(answerable_relevance)) if answerable_relevance else 0.0
    # 1. what to read: by F1 with no abstention
    grid = [(r, p) for r in range(1, read_max + 1) for p in PENALTIES]
    f1 = {rp: score(tune, (*rp, 0.0, center), -1e9)["f1"] for rp in grid}
    read, pen = next(rp for rp in grid if f1[rp] >= max(f1.values()) - SAME_F1)  # grid runs cheapest first
    # 2. when to abstain: the relevance weight that says "no answer" most often at the answer rate kept
    by_weight = {}
    for w in WEIGHTS:
        t = threshold_for(tune, (read, pen, w, center), min_answer_rate)
        by_weight[w] = (t, score(tune, (read, pen, w, center), t))
    weight = max(WEIGHTS, key=lambda w: by_weight[w][1]["no_answer_rate"])
    threshold = by_weight[weight][0]
    setting = (read, pen, weight, center)
    chosen = score(test, setting, threshold)
    cost = lambda rows: sorted(sum(r["ms"][:read]) for r in rows)  # noqa: E731  (reading the chosen sources)
    lines = [
        f"Command: `python -m bench.reader --data-dir DATA --squad SQUAD_DEV --coqa COQA_TEST --n {n}{readers}` ({machine()})", "",
        f"Tune: {sum(r['answerable'] for r in tune)} answerable SQuAD dev questions outside docs/eval's 500, "
        f"{sum(not r['answerable'] for r in tune)} unanswerable. Test: the 500 of docs/eval/squad and the other "
        f"{sum(not r['answerable'] for r in test)} unanswerable (SQuAD questions asked of the CoQA collection, CoQA questions "
        "asked of the SQuAD collection, CoQA's 'unknown' turns; CoQA from its test-half stories). Retrieval as /query "
        f"(fused + rerank, top 5{served}). Settings chosen on the {calibrate} reader's reads.", "",
        "**What to read**, chosen on tune by F1 with no abstention:", "",
        "| sources read | rank penalty | EM | F1 |", "|---|---|---|---|"]
    for r_, p_ in grid:
        s = score(tune, (r_, p_, 0.0, center), -1e9)
        lines.append(f"| {r_} | {p_} | {s['em']:.3f} | {s['f1']:.3f} |")
    lines += ["", f"**When to abstain**: confidence = reader margin + weight x (top source's reranker score - {center:.2f}, its "
              f"median on answerable tune questions); each weight's threshold answers {min_answer_rate:.0%} of answerable tune "
              "questions:", "", "| relevance weight | threshold | no-answer rate on tune |", "|---|---|---|"]
    lines += [f"| {w} | {t:.2f} | {s['no_answer_rate']:.3f} |" for w, (t, s) in by_weight.items()]
    lines += ["", f"Chosen: {read} source(s), rank penalty {pen}, relevance weight {weight}, threshold {threshold:.2f} "
              f"(`MMRAG_READER_SOURCES={read} MMRAG_READER_RANK_PENALTY={pen} MMRAG_READER_RELEVANCE_WEIGHT={weight} "
              f"MMRAG_READER_RELEVANCE_CENTER={center:.2f} MMRAG_READER_THRESHOLD={threshold:.2f}`; where the top source has no "
              f"reranker score, the margin alone against `MMRAG_READER_THRESHOLD_ALONE={by_weight[0.0][0]:.2f}`, the weight-0 row). "
              "The trade-off on test:", "",
              "| threshold | answer rate | answered precision (F1 >= 0.5) | EM | F1 | no-answer rate (unanswerable) |",
              "|---|---|---|---|---|---|"]
    for t in np.round(np.linspace(threshold - 4, threshold + 4, 9), 2):
        s = score(test, setting, float(t))
        mark = " **chosen**" if abs(t - threshold) < 1e-6 else ""
        lines.append(f"| {t:.2f}{mark} | {s['answer_rate']:.3f} | {s['answered_precision']:.3f} | {s['em']:.3f} | "
                     f"{s['f1']:.3f} | {s['no_answer_rate']:.3f} |")
    other = "int8" if calibrate == "fp32" else "fp32"
    scored = {calibrate: chosen, other: score(tests[other], setting, threshold)}
    lines += ["", f"At the chosen setting on test: answer rate {chosen['answer_rate']:.3f}, no-answer rate "
              f"{chosen['no_answer_rate']:.3f}, EM {chosen['em']:.3f}, F1 {chosen['f1']:.3f} (unanswered questions "
              "count as F1 0).", "",
              f"Reader cost per query (tokenise + ONNX Runtime, {read} source(s), 1 thread), and the {other} reader "
              f"(`MMRAG_READER_INT8={str(other == 'int8').lower()}`) on the same reads, setting and threshold:", "",
              "| reader | EM | F1 | answer rate | no-answer rate | p50 ms | p95 ms |", "|---|---|---|---|---|---|---|"]
    for label, s in scored.items():
        ms = cost(tunes[label] + tests[label])
        lines.append(f"| {label} | {s['em']:.3f} | {s['f1']:.3f} | {s['answer_rate']:.3f} | {s['no_answer_rate']:.3f} | "
                     f"{statistics.median(ms):.1f} | {ms[int(0.95 * len(ms))]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, required=True,
                    help="holds the collections 'squad' and 'coqa' (mmrag eval --write-corpus, then mmrag ingest)")
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--coqa", type=Path, required=True)
    ap.add_argument("--n", type=int, default=500, help="questions per group")
    ap.add_argument("--read", type=int, default=3, help="the most sources read")
    ap.add_argument("--min-answer-rate", type=float, default=0.92,
                    help="the threshold keeps at least this answer rate on tune (above the 0.90 wanted, so that questions "
                         "it was not chosen on keep 0.90)")
    ap.add_argument("--reads", type=Path, help="a JSON file of the reads: written after reading, reused if there "
                                               "(to rescore without reading again)")
    ap.add_argument("--out", type=Path, help="markdown file to write the section into")
    ap.add_argument("--calibrate", choices=["fp32", "int8"], default="int8",
                    help="the reader whose reads choose the settings (the one served: MMRAG_READER_INT8)")
    ap.add_argument("--readers", help="readers to compare, comma-separated (default: MMRAG_READER_MODEL), e.g. "
                                      "packaged:reader-minilm,packaged:reader-e5")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    from mmrag.settings import Settings

    s = Settings(data_dir=a.data_dir)
    lead = (f", then the first {s.cross_encoder_top_candidates} on {s.cross_encoder_top_sentences}"
            if s.cross_encoder_top_sentences > s.cross_encoder_sentences and s.cross_encoder_top_candidates else "")
    served = (f"; cross-encoder ONNX {'int8' if s.cross_encoder_int8 else 'fp32'} reading {s.cross_encoder_sentences} "
              f"sentence(s) a candidate{lead}, text model on {s.text_runtime}")

    names = a.readers.split(",") if a.readers else [s.reader_model]
    if a.reads and a.reads.exists():
        tunes, tests = json.loads(a.reads.read_text())
    else:
        from app.services import Services
        from mmrag.reader_e5 import open_reader

        services = Services(Settings(data_dir=a.data_dir, llm_backend="reader"))
        tune_q, test_q = questions(a.squad, a.coqa, a.n)
        # every reader, fp32 and int8, reads the same retrieved sources
        cache = services.settings.model_cache
        readers = {f"{n}|{p}": open_reader(n, cache, 1, int8=p == "int8") for n in names for p in ("fp32", "int8")}
        tunes = collect(services, readers, tune_q, a.read, not a.no_progress)
        tests = collect(services, readers, test_q, a.read, not a.no_progress)
        if a.reads:
            a.reads.write_text(json.dumps([tunes, tests]))
    for name in names:
        mine = [{p: rows[f"{name}|{p}"] for p in ("fp32", "int8")} for rows in (tunes, tests)]
        text = report(*mine, a.n, a.read, a.min_answer_rate, a.calibrate, served, f" --readers {a.readers}" if a.readers else "")
        if len(names) > 1 or name != "packaged:reader-minilm":
            text = f"Reader `{name}` (`MMRAG_READER_MODEL`), read in the same run as {', '.join(f'`{n}`' for n in names)}. " + text
        print(text)
        if a.out:
            section, title = SECTIONS.get(name, (f"reader-{name.rsplit(':', 1)[-1]}", f"The reader {name}"))
            write_section(a.out, section, f"## {title}: sources read, abstention, cost (#20)\n\n" + text)


if __name__ == "__main__":
    main()
