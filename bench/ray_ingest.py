"""Ingestion throughput: the local executor, Ray with one worker node, and Ray with two worker nodes
(a head and a second node started with ``ray start`` on this machine, one CPU each).

    python -m bench.ray_ingest [--docs 24] [--store local|postgres] [--out docs/benchmarks.md]

The corpus is generated: Markdown reports of 30 paragraphs each (no pictures), so the work is parsing,
chunking, text and sentence embedding and commits, the part Ray spreads. Each run ingests it into an
empty store; documents per second are measured end to end (driver start to summary), Ray's start-up
included, models loading in every worker included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
PORT = 6391


def corpus(folder: Path, n_docs: int) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    words = ("harbour tide moon lighthouse granite lamp panel inverter cleaning storm wave sailor boat rope anchor keeper island "
             "rock fog horn signal ship cargo port crane pier beacon chart compass north south coast current reef channel depth "
             "buoy mast sail deck hull engine fuel oil lens prism mirror flame survey report annual budget council").split()
    folder.mkdir(parents=True)
    for d in range(n_docs):
        paras = []
        for k in range(30):
            sentences = [" ".join(rng.choice(words, rng.integers(8, 18))).capitalize() + "." for _ in range(rng.integers(2, 5))]
            paras.append(f"Item {k} of report {d}. " + " ".join(sentences))
        (folder / f"report-{d:03d}.md").write_text(f"# Report {d}\n\n## Findings\n\n" + "\n\n".join(paras))


def ray(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "ray"), *args], check=True, capture_output=True,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"})


def ingest(folder: Path, data: Path, extra: list[str], env: dict) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(folder), "-c", "bench", "--data-dir", str(data), "--json",
                          *extra], check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    summary = json.loads(out)
    summary["wall_s"] = time.perf_counter() - t0
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=24)
    ap.add_argument("--store", choices=["local", "postgres"], default="local")
    ap.add_argument("--postgres-url", help="an empty database per run is made on this server (--store postgres)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mmrag-bench-ray-"))
    corpus(work / "corpus", a.docs)
    env = {**os.environ, "MMRAG_IMAGE_MODEL": "none", "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    runs = [("local executor", []),
            ("Ray, 1 worker node (1 CPU)", ["--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}"]),
            ("Ray, 2 worker nodes (1 CPU each)", ["--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}"])]
    rows = []
    try:
        for k, (name, extra) in enumerate(runs):
            if k == 1:
                ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false")
            if k == 2:
                ray("start", f"--address=127.0.0.1:{PORT}", "--node-ip-address=127.0.0.1", "--num-cpus=1")
            run_env = dict(env)
            if a.store == "postgres":
                from indexes.pg_local import fresh_database

                run_env.update(MMRAG_STORE="postgres", MMRAG_POSTGRES_URL=fresh_database(a.postgres_url, f"bench_ray_{k}"))
            summary = ingest(work / "corpus", work / f"data{k}", extra, run_env)
            rows.append((name, summary))
            print(name, summary["ok"], summary["failed"], round(summary["wall_s"], 1), flush=True)
    finally:
        ray("stop", "--force")
        shutil.rmtree(work, ignore_errors=True)
    base = rows[1][1]["wall_s"]
    lines = [f"Machine: {machine()}. Command: `python -m bench.ray_ingest --docs {a.docs} --store {a.store}`. "
             f"{a.docs} generated Markdown reports of 30 paragraphs; text and sentence embedding with the default model; "
             "wall time from the command's start to its summary (Ray's start-up and each worker's model loading included).", "",
             "| executor | documents ok | units | wall s | documents/s | vs Ray 1 node |", "|---|---|---|---|---|---|"]
    for name, s in rows:
        lines.append(f"| {name} | {s['ok']} | {s['units']} | {s['wall_s']:.1f} | {s['ok'] / s['wall_s']:.2f} | {base / s['wall_s']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "ray-ingest", "### Ingestion on Ray: one node against two (#21)\n\n" + text)


if __name__ == "__main__":
    main()
