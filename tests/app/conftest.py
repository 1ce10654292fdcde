"""Real processes: the mmrag service under uvicorn, and a fake LLM server speaking HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.generation.local import free_port  # noqa: F401  (the tests' servers take free ports too)

HERE = Path(__file__).parent


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


@pytest.fixture(scope="session")
def llm_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "llm_server.py"), str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    url = f"http://127.0.0.1:{port}"
    yield url
    proc.terminate()
    proc.wait(10)


def set_mode(llm_url: str, mode: str) -> None:
    httpx.post(f"{llm_url}/control", json={"mode": mode}).raise_for_status()


@pytest.fixture(scope="session")
def service(tmp_path_factory, fixtures, llm_server):
    """mmrag serve, on a data dir with the generated documents ingested, generating through the fake LLM."""
    data = tmp_path_factory.mktemp("service") / "data"
    env = {**os.environ, "MMRAG_LLM_BACKEND": "openai", "MMRAG_LLM_URL": f"{llm_server}/v1", "MMRAG_LLM_MODEL": "fake",
           "MMRAG_LLM_TIMEOUT_S": "2", "MMRAG_LLM_RETRIES": "1", "MMRAG_IMAGE_PRETRAINED": "packaged"}
    from mmrag.embedding import bridge
    from tests.conftest import MODEL_CACHE

    ckpt = MODEL_CACHE / "models" / bridge.checkpoint_name()
    if ckpt.exists():  # reuse the checkpoint the session already built
        env["MMRAG_IMAGE_PRETRAINED"] = str(ckpt)
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(fixtures["pdf"]), str(fixtures["docx"]), str(fixtures["png"]),
                    str(fixtures["zh_txt"]), "-c", "docs", "--data-dir", str(data)], env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz", proc)
    yield base
    proc.terminate()
    proc.wait(20)
