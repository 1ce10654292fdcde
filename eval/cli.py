"""``mmrag eval`` and ``python -m eval``: score answers and retrieval on a dataset, write a report."""

from __future__ import annotations

import argparse
import random
import shlex
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, type=Path, help="SQuAD JSON, CoQA JSON, or JSONL {id, question, answers, relevant_documents}")
    p.add_argument("--collection", "-c", help="the collection holding the dataset's documents")
    p.add_argument("--data-dir", help="data directory (in-process runs)")
    p.add_argument("--out", type=Path, help="output folder for metrics.json, predictions.jsonl, report.md and plots")
    p.add_argument("--no-generate", action="store_true", help="retrieval metrics only (no answers, no BLEU/METEOR)")
    p.add_argument("--url", help="evaluate a running service (POST URL/query) instead of the in-process pipeline")
    p.add_argument("--api-key", help="API key for --url")
    p.add_argument("--ablation", action="store_true", help="also run bm25, dense, rrf, fused (first stage) and fused+features (no cross-encoder) retrieval and tabulate them")
    p.add_argument("--limit", type=int, help="evaluate a random sample of this many questions (seeded)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--coqa-turns", choices=["first", "all"], default="first", help="CoQA: ask only each story's first question, or every turn")
    p.add_argument("--split", "--coqa-split", dest="split", choices=["train", "test"],
                   help="CoQA, SQuAD-format sets: only the questions of this half of the stories or articles (the "
                        "packaged readers learnt from CoQA's and DRCD's train halves: score their answers on test)")
    p.add_argument("--write-corpus", type=Path, metavar="DIR", help="write the dataset's passages as files (to ingest), then exit")
    p.add_argument("--types", help="only these unit types, comma-separated (text, table, image): e.g. 'image' to score "
                   "text-to-image search over caption-less pictures")
    p.add_argument("--generator", help="the answer backend to score, by name (reader, extractive, openai, ollama, local); "
                   "default MMRAG_LLM_BACKEND. In-process runs only")
    p.add_argument("--unanswerable", action="store_true",
                   help="the collection does not hold these questions' answers (another corpus): every one is scored "
                        "for abstention (no_answer_rate), none for retrieval")
    p.add_argument("--answerable-only", action="store_true", help="leave out the questions the dataset marks unanswerable")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from eval.datasets import DatasetError, load_dataset, write_corpus

    try:
        dataset = load_dataset(args.dataset, args.coqa_turns, args.split)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.write_corpus:
        if not dataset.corpus:
            print("error: this dataset has no passages of its own; ingest your documents instead", file=sys.stderr)
            return 2
        n = write_corpus(dataset, args.write_corpus)
        # the folder's name, not the dataset's: SQuAD-shifts' files all call themselves "squad", and two
        # corpora in one collection would score each other's passages
        name = Path(args.write_corpus).resolve().name
        print(f"wrote {n} files to {args.write_corpus}; next: mmrag ingest {args.write_corpus} -c {name}, then "
              f"mmrag eval --dataset {args.dataset} --collection {name} --out REPORT_DIR")
        return 0
    if not args.collection or not args.out:
        print("error: --collection and --out are required to evaluate", file=sys.stderr)
        return 2
    if args.answerable_only:
        dataset.examples = [e for e in dataset.examples if not e.meta.get("unanswerable")]
    if args.unanswerable:
        for e in dataset.examples:
            e.meta["unanswerable"], e.relevant_documents = True, []
    if args.limit and args.limit < len(dataset.examples):
        dataset.examples = random.Random(args.seed).sample(dataset.examples, args.limit)
    from eval.run import DEFAULT_MODE, MODES

    types = [t.strip() for t in args.types.split(",") if t.strip()] if args.types else None
    if types and set(types) - {"text", "table", "image"}:
        print(f"error: --types takes text, table, image; got {args.types!r}", file=sys.stderr)
        return 2

    modes = list(MODES) if args.ablation else [DEFAULT_MODE]
    if args.url and args.generator:
        print("error: --generator picks the in-process backend; a service at --url answers with its own", file=sys.stderr)
        return 2
    if args.url:
        from eval.run import HttpRunner

        runner = HttpRunner(args.url, args.collection, args.api_key, types)
        modes = [DEFAULT_MODE]
    else:
        from eval.run import InProcessRunner
        from mmrag.settings import Settings

        overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
        if args.generator:
            overrides["llm_backend"] = args.generator
        settings = Settings(**overrides)
        runner = InProcessRunner(settings, args.collection, types)
    from eval.metrics import MetricSetupError, ensure_wordnet
    from eval.report import write_outputs
    from eval.run import evaluate
    from mmrag.machine import machine

    try:
        if not args.no_generate:
            ensure_wordnet()  # fail now, not after every question has run
        results = evaluate(dataset, runner, modes, generate=not args.no_generate, progress=not args.no_progress)
    except MetricSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "mmrag eval " + " ".join(shlex.quote(a) for a in sys.argv[2:] if a) if sys.argv[1:2] == ["eval"] else " ".join(sys.argv)
    summary = write_outputs(args.out, dataset.name, results, command, machine())
    keys = ("recall@1", "recall@10", "mrr@10", "ndcg@10", "page_hit@1", "page_hit@5", "bleu", "meteor")
    print(", ".join(f"{k} {summary[k]:.3f}" for k in keys if summary.get(k) is not None))
    print(f"report: {args.out / 'report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from app.cli import configure_logging

    p = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    add_arguments(p)
    args = p.parse_args(argv)
    configure_logging()
    return run(args)
