"""Fake OpenAI-compatible chat servers for tests and notebooks (not part of archnb): `serve_fake_openai` answers 1.1 ×
the exact value of the question it recognises and then runs on, as small models do, after one 503 (Retry-After: 0)
per question; `serve_misbehaving` misbehaves in the ways a long study meets (see `Misbehaving`)."""

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI(BaseHTTPRequestHandler):
    "Checks the key, honours stop sequences, lists its one model, records the bodies and the most requests in flight."

    answers, seen, in_flight, max_in_flight, lock, bodies, key, model = {}, set(), 0, 0, threading.Lock(), [], None, ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.reply(200, {"object": "list", "data": [{"id": self.model}]})

    def do_POST(self):
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with cls.lock:
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
            cls.bodies.append(body)
        try:
            time.sleep(0.05)
            self.answer(body)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def answer(self, body: dict):
        "Refuse a wrong key, ask once to retry, then reply with the final answer and chatter, cut at stop sequences."
        cls, question = type(self), body["messages"][-1]["content"]
        if self.headers.get("Authorization") != (f"Bearer {cls.key}" if cls.key else None):
            return self.reply(401, {"error": f"bad key {self.headers.get('Authorization')}"})
        if question not in cls.seen:
            cls.seen.add(question)
            return self.reply(503, {"error": "busy"}, {"Retry-After": "0"})
        exact = next(v for q, v in cls.answers.items() if q in question)
        text = f"Roughly.\nFinal answer: {exact * 1.1:.2f}\nLet me also say that I like numbers."
        for s in body.get("stop") or []:
            text = text.split(s)[0]
        message = {"role": "assistant", "content": text}
        usage = {"prompt_tokens": len(question.split()), "completion_tokens": len(text.split())}
        self.reply(200, {"choices": [{"message": message, "finish_reason": "stop"}], "usage": usage})

    def reply(self, code: int, obj: dict, headers: dict | None = None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def serve_fake_openai(answers: dict, key: str | None = None, model: str = "fake-model"):
    "Start a fake server on a free local port: (server, base URL ending in /v1, its handler class to inspect)."
    state = {
        "answers": answers,
        "seen": set(),
        "in_flight": 0,
        "max_in_flight": 0,
        "lock": threading.Lock(),
        "bodies": [],
        "key": key,
        "model": model,
    }
    handler = type("FakeOpenAI", (FakeOpenAI,), state)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1", handler


class Misbehaving(BaseHTTPRequestHandler):
    """A server that misbehaves as its path says: /drip sends a byte every 0.2 s, /redirect moves to /elsewhere,
    /echo-error and /echo-reply echo the key (raw past 290 characters, and URL-encoded), /retry-inf asks to wait
    forever, /busy-once asks once to wait 1.5 s, /huge announces and streams 64 MiB; `hits` records every path asked."""

    hits, key = [], ""

    def log_message(self, *args):
        pass

    def send(self, code: int, body: bytes = b"", **headers):
        self.send_response(code)
        for k, v in ({"Content-Length": str(len(body))} | {k.replace("_", "-"): v for k, v in headers.items()}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.do_POST()

    def stream(self, size: int, chunk: bytes, pause: float):
        "Announce `size` bytes and send them `chunk` at a time; stop quietly when the client hangs up."
        self.send(200, Content_Length=str(size))
        try:
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass

    def do_POST(self):
        cls = type(self)
        cls.hits.append(self.path)
        echoed = f"{cls.key} and {urllib.parse.quote(cls.key, safe='')}"
        if self.path.startswith("/drip"):
            self.stream(1000, b" ", 0.2)
        elif self.path.startswith("/huge"):
            self.stream(64 * 2**20, b" " * 2**20, 0.0)
        elif self.path.startswith("/redirect"):
            self.send(307, Location=f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere/v1/chat/completions")
        elif self.path.startswith("/echo-error"):
            self.send(401, ("x" * 290 + echoed).encode())
        elif self.path.startswith("/retry-inf"):
            self.send(429, b"busy", Retry_After="inf")
        elif self.path.startswith("/busy-once") and cls.hits.count(self.path) == 1:
            self.send(429, b"busy", Retry_After="1.5")
        else:
            reply = {"choices": [{"message": {"content": f"Final answer: 3 (key {echoed})"}, "finish_reason": "stop"}]}
            self.send(200, json.dumps(reply).encode())


def serve_misbehaving(key: str):
    "Start a misbehaving server on a free local port: (server, its root URL, its handler class to inspect)."
    handler = type("Misbehaving", (Misbehaving,), {"hits": [], "key": key})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", handler
