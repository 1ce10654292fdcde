"""Train the packaged sentence reranker (mmrag/data/sentence-minilm.npz), or one on your own questions.

    python -m bench.train_reranker --data-dir D --collection new_wiki --dataset SHIFTS/new_wiki_v1.0.json \
        --exclude-sample 4000 --out mmrag/data/sentence-minilm.npz

The corpus must be ingested (``mmrag eval --dataset FILE --write-corpus DIR``, then ``mmrag ingest DIR
-c NAME``); the dataset needs answer texts (SQuAD format). For each question the retriever's own
candidates give the training group: the gold passage's sentence that holds the answer against the
best sentences (by the sentence feature) of the five best-fused wrong passages and two other
sentences of the gold passage, so the model learns exactly the choice it faces at query time.
Listwise loss (softmax over the group of 8), one epoch, AdamW, linear decay; the embeddings and the
first ``--freeze`` layers stay as packaged, so only the rest ships. ``--exclude-sample`` leaves out the
questions ``bench.tune_fusion`` tunes on (same seed), so the fusion weights are not chosen on
questions the reranker learnt.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from pathlib import Path

import numpy as np

from app.retrieval import _sentences, convex

log = logging.getLogger("bench.train_reranker")
GROUP_NEGATIVES, GOLD_OTHERS = 5, 2


def training_groups(retriever, examples, collection: str, k: int = 100, seed: int = 0) -> list[tuple[str, list[str]]]:
    """(question, [answer sentence, 7 negatives]) for each question whose answer sentence can be found."""
    from tqdm import tqdm

    store, rng, groups, names = retriever.store, random.Random(seed), [], {}

    def file_name(unit) -> str:
        if unit.document_id not in names:
            names[unit.document_id] = store.document(unit.document_id).file_name
        return names[unit.document_id]

    for ex in tqdm(examples, desc="candidates", unit="q"):
        answers = [a.lower() for a in ex.answers if a.strip()]
        c = retriever.candidates(ex.question, collection, k)
        if not answers or len(c.ids) < GROUP_NEGATIVES + 1:
            continue
        order = np.argsort(-convex(c.features, retriever.weights), kind="stable")[:12]
        ids = [int(c.ids[i]) for i in order]
        units = store.units(ids)
        gold = [u for u in ids if u in units and file_name(units[u]) in ex.relevant_documents]
        wrong = [u for u in ids if u in units and file_name(units[u]) not in ex.relevant_documents]
        if not gold or len(wrong) < GROUP_NEGATIVES:
            continue
        every = list(_sentences(units[gold[0]].text)) or [units[gold[0]].text]
        positive = next((s for s in every if any(a in s.lower() for a in answers)), None)
        if positive is None:
            continue
        others = [s for s in every if s != positive]
        negatives = [(c.sentences.get(u) or (units[u].search_text(),))[0] for u in wrong[:GROUP_NEGATIVES]]
        negatives += rng.sample(others, min(GOLD_OTHERS, len(others)))
        while len(negatives) < GROUP_NEGATIVES + GOLD_OTHERS:
            negatives.append(negatives[len(negatives) % GROUP_NEGATIVES])
        groups.append((ex.question, [positive, *negatives]))
    return groups


def train(groups, out: Path, freeze: int = 2, lr: float = 1e-4, batch_groups: int = 4, max_length: int = 96,
          threads: int = 0, meta: dict | None = None, max_steps: int = 0) -> dict:
    import torch
    from transformers import AutoTokenizer

    from mmrag import reranker

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    base = str(reranker.base_model_path())
    tok = AutoTokenizer.from_pretrained(base)
    model = reranker.build_model(None)
    frozen = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(freeze)))
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith(frozen)
    groups = list(groups)
    random.Random(0).shuffle(groups)
    steps = len(groups) // batch_groups
    if max_steps:
        steps = min(steps, max_steps)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / max(steps, 1)))
    model.train()
    t0, running = time.time(), None
    for s in range(steps):
        batch = groups[s * batch_groups:(s + 1) * batch_groups]
        enc = tok([q for q, texts in batch for _ in texts], [t for _, texts in batch for t in texts], padding=True,
                  truncation="longest_first", max_length=max_length, return_tensors="pt")
        logits = model(**enc).logits.view(len(batch), -1)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if s % 40 == 0 or s == steps - 1:
            log.info("step %d/%d loss %.3f (%.0f s)", s + 1, steps, running, time.time() - t0)
    model.eval()
    info = {"inputs": "sentences", "base": "all-MiniLM-L6-v2", "frozen": list(frozen), "max_length": max_length,
            "groups": len(groups), "steps": steps, "lr": lr, "final_loss": running, **(meta or {})}
    n = reranker.save_delta(model, frozen, out, info)
    log.info("wrote %s (%d tensors)", out, n)
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, required=True, help="data dir holding the ingested corpus")
    ap.add_argument("--collection", required=True)
    ap.add_argument("--dataset", type=Path, required=True, help="SQuAD-format questions with answers, over that corpus")
    ap.add_argument("--exclude-sample", type=int, default=0, help="leave out bench.tune_fusion's sample of this size")
    ap.add_argument("--seed", type=int, default=13, help="that sample's seed")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--freeze", type=int, default=2, help="first layers kept as packaged (not shipped)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-steps", type=int, default=0, help="stop early (smoke runs); 0: one epoch")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from app.services import Services
    from eval.datasets import load_dataset
    from mmrag.settings import Settings

    retriever = Services(Settings(data_dir=a.data_dir, cross_encoder="")).pipeline.retriever
    ds = load_dataset(a.dataset)
    examples = ds.examples
    if a.exclude_sample and len(examples) > a.exclude_sample:
        held = {e.id for e in random.Random(a.seed).sample(examples, a.exclude_sample)}
        examples = [e for e in examples if e.id not in held]
    groups = training_groups(retriever, examples, a.collection)
    log.info("%d training groups from %d questions", len(groups), len(examples))
    train(groups, a.out, a.freeze, a.lr, max_steps=a.max_steps,
          meta={"dataset": a.dataset.name, "questions": len(examples), "excluded_sample": a.exclude_sample, "seed": a.seed})


if __name__ == "__main__":
    main()
