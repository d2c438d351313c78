"""The model API of the tray e2e: the devserver's own demo model, except for prompts that carry
SLOW_MARKER, which get a long answer streamed slowly (a task that runs until it is stopped).

The demo model answers in two seconds, too fast to click a running task's items. The agent
(the real Claude Code CLI) talks to this proxy like to any Anthropic-compatible API; only the
pace of one answer is scripted here.
"""
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_MARKER = "[e2e: answer slowly]"
SLOW_CHUNKS = 2000
SLOW_INTERVAL = 0.25


def _sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    upstream = ""  # the devserver's demo model, e.g. http://127.0.0.1:8000/demo-model

    def log_message(self, *_args):  # quiet: the e2e's output is its checks
        pass

    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        self.do_HEAD()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if SLOW_MARKER in body.decode(errors="replace") and b'"stream":true' in body.replace(b" ", b""):
            return self._slow(json.loads(body).get("model", "claude"))
        self._forward(body)

    def _forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(self.upstream + self.path, data=body, headers=headers, method="POST")
        try:
            resp = urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as e:
            resp = e
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.end_headers()
        while True:
            chunk = resp.read1(4096) if hasattr(resp, "read1") else resp.read(4096)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()

    def _slow(self, model):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        events = [
            _sse("message_start", {"type": "message_start", "message": {
                "id": "msg_e2e_slow", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
        ]
        try:
            for e in events:
                self.wfile.write(e)
            self.wfile.flush()
            for i in range(SLOW_CHUNKS):
                time.sleep(SLOW_INTERVAL)
                self.wfile.write(_sse("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": f"chunk {i}. "}}))
                self.wfile.flush()
            for e in (_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
                      _sse("message_delta", {"type": "message_delta",
                                             "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                             "usage": {"output_tokens": 7}}),
                      _sse("message_stop", {"type": "message_stop"})):
                self.wfile.write(e)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent was stopped: its connection went with it


def start(port, upstream):
    """Serve on 127.0.0.1:`port` in a daemon thread; returns the server."""
    handler = type("Handler", (_Handler,), {"upstream": upstream.rstrip("/")})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
