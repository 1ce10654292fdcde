"""The llama.cpp server of the ``xllamacpp`` wheel in a process of its own:
``python -m app.generation.llama_server --model FILE.gguf --port 8081``. It serves
``/v1/chat/completions`` (streaming too), ``/v1/models`` and ``/health`` until it is stopped."""

from __future__ import annotations

import argparse
import os
import signal
import threading


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="a GGUF file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 measured best beside mmrag on 2 cores)")
    p.add_argument("--ctx", type=int, default=4096, help="context window in tokens")
    p.add_argument("--parent", type=int, help="exit when this process is gone (mmrag, killed without a chance to stop us)")
    args = p.parse_args(argv)
    try:
        import xllamacpp
    except ImportError:
        raise SystemExit("the local LLM needs the llm extra: pip install -e '.[llm]'") from None

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.ctx
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.hostnames = [args.host]
    params.port = args.port
    params.offline = True  # never reach for a hub
    server = xllamacpp.Server(params)  # serves from threads of its own while this one waits
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        if args.parent and os.getppid() != args.parent:
            break  # orphaned: whoever started us died without stopping us
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
