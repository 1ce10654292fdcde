"""LLM servers over HTTP (httpx): OpenAI-compatible chat completions and Ollama's native API.

Timeouts answer 504 and other failures 502, each naming the backend and its URL; 5xx answers and
connection errors are retried a bounded number of times with backoff.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from app.generation.base import Answer, GenerationCancelled, GenerationError, Source
from app.generation.citations import check_citations
from app.generation.prompt import build_messages
from mmrag.settings import Settings

log = logging.getLogger(__name__)


class HttpLLMBackend:
    name = "http"
    whole = False  # streams tokens as the model writes them

    def __init__(self, settings: Settings) -> None:
        self.url = settings.llm_url.rstrip("/")
        self.model = settings.llm_model
        self.timeout = settings.llm_timeout_s
        self.retries = settings.llm_retries
        self.vision = settings.llm_vision
        self.budget = settings.context_tokens
        self.deadline = settings.llm_deadline_s
        self.max_chars = settings.llm_max_answer_chars
        self.check_citations = settings.llm_check_citations
        self.max_bytes = self.max_chars * 4 + 65536  # the JSON around an answer of max_chars UTF-8 characters
        headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
        self._headers = headers
        self._local = threading.local()

    @property
    def client(self) -> httpx.Client:
        """One connection pool per thread: a stream abandoned by its client is closed by the thread
        reading it, and a pool shared across threads deadlocked there (httpcore's pool lock)."""
        client = getattr(self._local, "client", None)
        if client is None:
            # trust_env: HTTP(S)_PROXY and NO_PROXY from the environment, as air-gapped sites set them
            client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                                  headers=self._headers, trust_env=True)
            self._local.client = client
        return client

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

    def _post(self, body: dict, stream: bool, deadline: float):
        url = self.url + self.endpoint
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"no answer within {self.deadline:g}s (MMRAG_LLM_DEADLINE_S)", 504)
            try:
                # every read waits at most what is left of the deadline, so a silent server cannot outlast it
                timeout = httpx.Timeout(min(self.timeout, left), connect=min(10.0, self.timeout, left))
                request = self.client.build_request("POST", url, json=body, timeout=timeout)
                response = self.client.send(request, stream=True)
                if response.status_code >= 500 and attempt < self.retries:
                    response.close()
                    time.sleep(0.5 * 2**attempt)
                    continue
                if response.status_code >= 400:
                    text = next(response.iter_bytes(1024), b"").decode(errors="replace")[:300]
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

    def _guard(self, deadline: float, cancelled: Callable[[], bool] | None) -> None:
        """Checked between chunks: a server trickling one byte at a time still meets the deadline."""
        if cancelled is not None and cancelled():
            raise GenerationCancelled("the client went away")
        if time.monotonic() > deadline:
            raise self._fail(f"no complete answer within {self.deadline:g}s (MMRAG_LLM_DEADLINE_S)", 504)

    def generate(self, question: str, sources: list[Source], cancelled: Callable[[], bool] | None = None) -> Answer:
        deadline = time.monotonic() + self.deadline
        response = self._post(self.payload(self._messages(question, sources), stream=False), False, deadline)
        raw = bytearray()
        try:
            for chunk in self._chunks(response, deadline, cancelled):
                raw += chunk
                if len(raw) > self.max_bytes:
                    raise self._fail(f"answer over {self.max_bytes} bytes (MMRAG_LLM_MAX_ANSWER_CHARS): refused")
        except httpx.TimeoutException as exc:
            raise self._fail(f"timed out after {self.timeout:g}s while answering", 504) from exc
        except httpx.TransportError as exc:
            raise self._fail(f"broke off while answering ({exc})") from exc
        finally:
            response.close()
        try:
            body = json.loads(bytes(raw))
            text = self.parse(body)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self._fail(f"returned malformed JSON ({type(exc).__name__}: {exc})") from exc
        if not isinstance(text, str):
            raise self._fail(f"returned no answer text (content is {type(text).__name__})")
        text, fixes = self.checked(text.strip()[: self.max_chars], sources)
        return Answer(text, "generated", self.name, self.model, body.get("usage", {}) if isinstance(body, dict) else {},
                      [f.to_dict() for f in fixes])

    def checked(self, text: str, sources: list[Source]) -> tuple[str, list]:
        """The answer with its citations checked against the sources (app.generation.citations)."""
        if not self.check_citations:
            return text, []
        return check_citations(text, {s.number: s.text for s in sources})

    def _chunks(self, response, deadline: float, cancelled) -> Iterator[bytes]:
        """The body's bytes as they come, with the deadline and the client checked on every chunk: a
        server that trickles bytes (without ever ending a line) cannot hold the reader."""
        for chunk in response.iter_bytes():
            self._guard(deadline, cancelled)
            yield chunk

    def _lines(self, response, deadline: float, cancelled) -> Iterator[str]:
        pending = b""
        for chunk in self._chunks(response, deadline, cancelled):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace").rstrip("\r")
            if len(pending) > self.max_bytes:
                raise self._fail("sent a stream line over the answer size limit")
        if pending:
            yield pending.decode("utf-8", errors="replace")

    def stream(self, question: str, sources: list[Source], cancelled: Callable[[], bool] | None = None) -> Iterator[str]:
        deadline = time.monotonic() + self.deadline
        response = self._post(self.payload(self._messages(question, sources), stream=True), True, deadline)
        sent = 0
        try:
            for line in self._lines(response, deadline, cancelled):
                if not line.strip():
                    continue
                try:
                    delta = self.parse_stream_line(line)
                except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    raise self._fail(f"sent a malformed stream line ({exc}): {line[:120]!r}") from exc
                if delta is None:
                    break
                if delta:
                    delta = delta[: self.max_chars - sent]
                    sent += len(delta)
                    yield delta
                    if sent >= self.max_chars:
                        log.warning("LLM answer cut at %d characters (MMRAG_LLM_MAX_ANSWER_CHARS)", self.max_chars)
                        break
        except httpx.TimeoutException as exc:
            raise self._fail(f"stream timed out after {self.timeout:g}s", 504) from exc
        except httpx.TransportError as exc:
            raise self._fail(f"stream broke off ({exc})") from exc
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
        choices = json.loads(data).get("choices") or [{}]
        return (choices[0].get("delta") or {}).get("content") or ""

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
        content = (obj.get("message") or {}).get("content")
        return None if obj.get("done") and not content else (content or "")

    def attach_images(self, messages, sources):
        last = dict(messages[-1])
        last["images"] = [_b64(s.image_path) for s in sources]
        return [*messages[:-1], last]


def make_http_backend(name: str, settings: Settings) -> HttpLLMBackend:
    return OpenAICompatibleBackend(settings) if name == "openai" else OllamaBackend(settings)
