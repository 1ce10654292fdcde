"""The local LLM's speed and answer quality, beside the extractive answer on the same evidence.

Each question gets the passage that holds its answer and two other passages of the same article (or
CoQA story set), in a seeded random order, as sources [1]-[3]: the reader's task without retrieval's
noise, so the figures say what the generator does with the evidence. The local server is the one
``MMRAG_LLM_BACKEND=local`` starts (llama.cpp from xllamacpp, one thread); the answers go through
mmrag's OpenAI-compatible backend and its citation check, as in the service.

    python -m bench.local_llm --squad ../shared/data/squad/squaddev_v1.1.json \\
        --coqa ../shared/data/coqa/coqa.test.json --n 12 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import httpx

from app.generation.base import Source
from app.generation.citations import strip_citations
from bench.report import write_section
from eval.datasets import Dataset, load_dataset
from eval.metrics import corpus_bleu, ensure_wordnet, exact_match, meteor, token_f1
from mmrag.machine import machine


def cases(dataset: Dataset, n: int, seed: int) -> list[tuple]:
    """(question, answers, sources, gold source number) for ``n`` seeded questions."""
    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    for name in dataset.corpus:
        groups.setdefault(name.rsplit("-", 1)[0], []).append(name)
    out = []
    for ex in rng.sample(dataset.examples, n):
        gold = ex.relevant_documents[0]
        group = groups.get(gold.rsplit("-", 1)[0], [])
        others = [g for g in group if g != gold] or [g for g in dataset.corpus if g != gold]
        names = [gold, *rng.sample(others, min(2, len(others)))]
        rng.shuffle(names)
        sources = [Source(k + 1, dataset.corpus[nm], nm, "text") for k, nm in enumerate(names)]
        out.append((ex.question, ex.answers, sources, names.index(gold) + 1))
    return out


def run(generator, items: list[tuple]) -> dict:
    preds, refs, secs, cited_gold, fixes, usage = [], [], [], 0, 0, []
    for question, answers, sources, gold in items:
        t0 = time.perf_counter()
        answer = generator.generate(question, sources)
        secs.append(time.perf_counter() - t0)
        text = strip_citations(answer.text)
        preds.append(text)
        refs.append(answers)
        cited_gold += f"[{gold}]" in answer.text
        fixes += len(answer.citation_fixes)
        usage.append(answer.usage)
    n = len(items)
    return {
        "n": n,
        "em": sum(exact_match(p, r) for p, r in zip(preds, refs)) / n,
        "f1": sum(token_f1(p, r) for p, r in zip(preds, refs)) / n,
        "bleu": corpus_bleu(preds, refs),
        "meteor": sum(meteor(p, r) for p, r in zip(preds, refs)) / n,
        "cites_gold": cited_gold / n,
        "fixes": fixes,
        "s_p50": statistics.median(secs),
        "s_mean": statistics.mean(secs),
        "prompt_tokens": statistics.mean(u.get("prompt_tokens", 0) for u in usage) if usage else 0,
        "completion_tokens": statistics.mean(u.get("completion_tokens", 0) for u in usage) if usage else 0,
        "answer_words": statistics.mean(len(p.split()) for p in preds),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--squad", type=Path, required=True)
    p.add_argument("--coqa", type=Path)
    p.add_argument("--n", type=int, default=12, help="questions per dataset")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    ensure_wordnet()

    from app.generation.extractive import ExtractiveGenerator
    from app.generation.llm import make_http_backend
    from app.generation.local import LocalServer, assemble, model_spec
    from mmrag.embedding import get_text_embedder
    from mmrag.settings import Settings

    settings = Settings()
    spec = model_spec(args.model)
    t0 = time.perf_counter()
    server = LocalServer(assemble(spec, settings.model_cache), threads=args.threads, ctx=4096).start()
    load_s = time.perf_counter() - t0
    llm = make_http_backend("openai", settings.model_copy(update={"llm_url": server.url + "/v1", "llm_model": spec.name,
                                                                   "llm_timeout_s": 300.0, "llm_deadline_s": 600.0}))
    extractive = ExtractiveGenerator(get_text_embedder(settings.text_model))
    rows = []
    try:
        for label, path in (("SQuAD dev", args.squad), ("CoQA (first turns)", args.coqa)):
            if path is None:
                continue
            items = cases(load_dataset(path), args.n, args.seed)
            for name, gen in ((f"local {spec.name}", llm), ("extractive (default today)", extractive)):
                r = run(gen, items)
                rows.append((label, name, r))
                print(label, name, {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
        speed = _speed(server.url, items[0][2] if rows else [])
    finally:
        server.stop()
    lines = [f"Machine: {machine()}. Command: `python -m bench.local_llm --squad ... --coqa ... --n {args.n} "
             f"--seed {args.seed} --threads {args.threads}`. Model {spec.name} ({spec.size / 1e9:.2f} GB), loaded in "
             f"{load_s:.1f} s; llama.cpp from xllamacpp, {args.threads} thread(s), context 4096.", "",
             "Each question gets its gold passage and two other passages of the same article, shuffled, as [1]-[3].", "",
             "| set | answer by | n | EM | F1 | BLEU | METEOR | cites the gold source | citations fixed | s/answer p50 | "
             "prompt tokens | answer tokens | answer words |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, name, r in rows:
        lines.append(f"| {label} | {name} | {r['n']} | {r['em']:.3f} | {r['f1']:.3f} | {r['bleu']:.2f} | {r['meteor']:.3f} | "
                     f"{r['cites_gold']:.2f} | {r['fixes']} | {r['s_p50']:.2f} | {r['prompt_tokens']:.0f} | "
                     f"{r['completion_tokens']:.0f} | {r['answer_words']:.1f} |")
    lines += ["", f"Speed (llama.cpp's own timings, mean of 3 answers over three passages): {speed[0]:.1f} prompt tokens/s "
                  f"read, {speed[1]:.1f} tokens/s written."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_section(args.out, "local-llm", "## The local LLM: speed and answers on given evidence (#20)\n\n" + text)


def _speed(url: str, sources: list[Source]) -> tuple[float, float]:
    """Prompt and generation tokens per second, as the server times them."""
    from app.generation.prompt import build_messages

    read, wrote = [], []
    for q in ("What is this about?", "Who is named first?", "What happened last?"):
        body = {"messages": build_messages(q, sources, 3000), "max_tokens": 48, "temperature": 0.1, "cache_prompt": False}
        t = httpx.post(url + "/v1/chat/completions", json=body, timeout=300).json().get("timings", {})
        read.append(t.get("prompt_per_second", 0.0))
        wrote.append(t.get("predicted_per_second", 0.0))
    return statistics.mean(read), statistics.mean(wrote)


if __name__ == "__main__":
    main()
