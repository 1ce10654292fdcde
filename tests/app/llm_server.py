"""A real HTTP server speaking the OpenAI chat-completions and Ollama chat protocols, for tests.

Run as a separate process: ``python tests/app/llm_server.py PORT``. ``POST /control`` with
``{"mode": ...}`` picks the behaviour of the following requests: ``ok`` (answers citing [1] and
echoing the question), ``slow`` (sleeps past any sane timeout), ``error500``, ``malformed`` (broken
JSON, or a broken stream line), ``trickle`` (one byte every 0.3 s, forever: until the reader hangs
up, which ``GET /last`` then reports as ``hung_up_at``), ``null`` (``"content": null``), ``huge``
(a 10 MB answer), ``miscite`` (the second source's first sentence, cited as [1]). ``GET /last`` returns the last request body received.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"mode": "ok", "last": None, "calls": 0, "trickling": 0, "hung_up_at": None}


def answer_for(body: dict) -> str:
    question = body["messages"][-1]["content"]
    if isinstance(question, list):  # vision: content parts
        question = next(p["text"] for p in question if p["type"] == "text")
    q = question.rsplit("Question:", 1)[-1].split("\n")[0].strip()
    sources = re.findall(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', question, re.S)
    if STATE["mode"] == "miscite" and len(sources) > 1:
        # what a small model does: another source's words, cited as [1] (the source least like [1])
        first = set(sources[0][1].lower().split())
        other = min(sources[1:], key=lambda s: len(first & set(s[1].lower().split())) / max(1, len(set(s[1].split()))))
        return f"{_first_sentence(other[1])} [1]"
    quoted = f" It says: {_first_sentence(sources[0][1])} [1]" if sources else ""
    return f"The answer to '{q}' is in the first source [1].{quoted}"


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", html.unescape(text).strip(), maxsplit=1)[0].rstrip(".")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, code: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/last":
            self._json(200, {"last": STATE["last"], "calls": STATE["calls"], "trickling": STATE["trickling"],
                             "hung_up_at": STATE["hung_up_at"], "now": time.time()})
        else:
            self._json(404, {"error": "no such path"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if self.path == "/control":
            STATE.update(mode=body["mode"], calls=0, hung_up_at=None)
            self._json(200, {"mode": STATE["mode"]})
            return
        STATE["last"], STATE["calls"] = body, STATE["calls"] + 1
        mode = STATE["mode"]
        if mode == "slow":
            time.sleep(6)
        if mode == "error500":
            self._json(500, {"error": "model crashed"})
            return
        if mode == "trickle":
            self._trickle(body)
            return
        if mode in ("null", "huge") and self.path.endswith("/chat/completions"):
            content = None if mode == "null" else "lava " * 2_000_000
            if body.get("stream"):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for _ in range(2000):
                    self.wfile.write(f"data: {json.dumps({'choices': [{'delta': {'content': 'lava ' * 1000}}]})}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                return
            self._json(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})
            return
        if self.path.endswith("/chat/completions"):
            self._openai(body, mode)
        elif self.path == "/api/chat":
            self._ollama(body, mode)
        else:
            self._json(404, {"error": f"unknown path {self.path}"})

    def _trickle(self, body):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream" if body.get("stream") else "application/json")
        self.end_headers()
        STATE["trickling"] += 1
        try:
            if body.get("stream"):
                self.wfile.write(b'data: {"choices": [{"delta": {"content": "Slowly "}}]}\n\n')
            while True:
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:  # the reader hung up
            STATE["hung_up_at"] = time.time()
        finally:
            STATE["trickling"] -= 1

    def _openai(self, body, mode):
        text = answer_for(body)
        if not body.get("stream"):
            if mode == "malformed":
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"choices": [ {"message": ')
                return
            self._json(200, {"choices": [{"message": {"role": "assistant", "content": text}}], "usage": {"total_tokens": 42}})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for word in text.split(" "):
            chunk = {"choices": [{"delta": {"content": word + " "}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        if mode == "malformed":
            self.wfile.write(b"data: {not json\n\n")
        self.wfile.write(b"data: [DONE]\n\n")

    def _ollama(self, body, mode):
        text = answer_for(body)
        if not body.get("stream"):
            self._json(200, {"message": {"role": "assistant", "content": text}, "done": True})
            return
        self.send_response(200)
        self.send_header("content-type", "application/x-ndjson")
        self.end_headers()
        for word in text.split(" "):
            self.wfile.write((json.dumps({"message": {"content": word + " "}, "done": False}) + "\n").encode())
        self.wfile.write((json.dumps({"message": {"content": ""}, "done": True}) + "\n").encode())


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()
