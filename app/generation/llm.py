"""LLM servers over HTTP (httpx): OpenAI-compatible chat completions and Ollama's native API.

Timeouts answer 504 and other failures 502, each naming the backend and its URL; 5xx answers and
connection errors are retried a bounded number of times with backoff.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from app.generation.base import Answer, GenerationError, Source
from app.generation.prompt import build_messages
from mmrag.settings import Settings

log = logging.getLogger(__name__)


class HttpLLMBackend:
    name = "http"

    def __init__(self, settings: Settings) -> None:
        self.url = settings.llm_url.rstrip("/")
        self.model = settings.llm_model
        self.timeout = settings.llm_timeout_s
        self.retries = settings.llm_retries
        self.vision = settings.llm_vision
        self.budget = settings.context_tokens
        headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
        # trust_env: HTTP(S)_PROXY and NO_PROXY from the environment, as air-gapped sites set them
        self.client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)), headers=headers, trust_env=True)

    # -- subclass hooks ------------------------------------------------------------------
    endpoint = ""

    def payload(self, messages: list[dict], stream: bool) -> dict:
        raise NotImplementedError

    def parse(self, body: dict) -> str:
        raise NotImplementedError

    def parse_stream_line(self, line: str) -> str | None:
        raise NotImplementedError

    def attach_images(self, messages: list[dict], sources: list[Source]) -> list[dict]:
        return messages

    # -- shared ----------------------------------------------------------------------------
    def _messages(self, question: str, sources: list[Source]) -> list[dict]:
        messages = build_messages(question, sources, self.budget)
        if self.vision:
            messages = self.attach_images(messages, [s for s in sources if s.image_path])
        return messages

    def _fail(self, what: str, status: int = 502) -> GenerationError:
        return GenerationError(f"LLM backend {self.name!r} at {self.url}: {what}", status)

    def _post(self, body: dict, stream: bool):
        url = self.url + self.endpoint
        for attempt in range(self.retries + 1):
            try:
                request = self.client.build_request("POST", url, json=body)
                response = self.client.send(request, stream=stream)
                if response.status_code >= 500 and attempt < self.retries:
                    response.close()
                    time.sleep(0.5 * 2**attempt)
                    continue
                if response.status_code >= 400:
                    text = response.read().decode(errors="replace")[:300]
                    response.close()
                    raise self._fail(f"answered HTTP {response.status_code}: {text}")
                return response
            except httpx.TimeoutException as exc:
                raise self._fail(f"timed out after {self.timeout:g}s ({type(exc).__name__})", 504) from exc
            except httpx.TransportError as exc:
                if attempt < self.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise self._fail(f"unreachable ({exc})") from exc
        raise self._fail("no answer")

    def generate(self, question: str, sources: list[Source]) -> Answer:
        response = self._post(self.payload(self._messages(question, sources), stream=False), stream=False)
        try:
            body = response.json()
            text = self.parse(body)
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            raise self._fail(f"returned malformed JSON ({type(exc).__name__}: {exc})") from exc
        return Answer(text.strip(), "generated", self.name, self.model, body.get("usage", {}) if isinstance(body, dict) else {})

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        response = self._post(self.payload(self._messages(question, sources), stream=True), stream=True)
        try:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                try:
                    delta = self.parse_stream_line(line)
                except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
                    raise self._fail(f"sent a malformed stream line ({exc}): {line[:120]!r}") from exc
                if delta is None:
                    break
                if delta:
                    yield delta
        except httpx.TimeoutException as exc:
            raise self._fail(f"stream timed out after {self.timeout:g}s", 504) from exc
        finally:
            response.close()


def _b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


class OpenAICompatibleBackend(HttpLLMBackend):
    """vLLM, llama.cpp server, Ollama's /v1, LM Studio and hosted OpenAI-style APIs."""

    name = "openai"
    endpoint = "/chat/completions"

    def payload(self, messages, stream):
        return {"model": self.model, "messages": messages, "stream": stream, "temperature": 0.1}

    def parse(self, body):
        return body["choices"][0]["message"]["content"]

    def parse_stream_line(self, line):
        if not line.startswith("data:"):
            return ""
        data = line[5:].strip()
        if data == "[DONE]":
            return None
        return json.loads(data)["choices"][0].get("delta", {}).get("content") or ""

    def attach_images(self, messages, sources):
        parts = [{"type": "text", "text": messages[-1]["content"]}]
        for s in sources:
            mime = "image/png" if s.image_path.endswith(".png") else "image/jpeg"
            parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{_b64(s.image_path)}"}})
        return [*messages[:-1], {"role": "user", "content": parts}]


class OllamaBackend(HttpLLMBackend):
    """Ollama's native /api/chat (newline-delimited JSON when streaming)."""

    name = "ollama"
    endpoint = "/api/chat"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.url = self.url.removesuffix("/v1")

    def payload(self, messages, stream):
        return {"model": self.model, "messages": messages, "stream": stream, "options": {"temperature": 0.1}}

    def parse(self, body):
        return body["message"]["content"]

    def parse_stream_line(self, line):
        obj = json.loads(line)
        if obj.get("error"):
            raise self._fail(f"stream error: {obj['error']}")
        return None if obj.get("done") and not obj.get("message", {}).get("content") else obj["message"]["content"]

    def attach_images(self, messages, sources):
        last = dict(messages[-1])
        last["images"] = [_b64(s.image_path) for s in sources]
        return [*messages[:-1], last]


def make_http_backend(name: str, settings: Settings) -> HttpLLMBackend:
    return OpenAICompatibleBackend(settings) if name == "openai" else OllamaBackend(settings)
