"""A tiny W3C WebDriver client (stdlib only) for WebKitWebDriver, driven directly (no
tauri-driver: desktop-ci.md §8 measured 50/50 passes this way). Idempotent calls are retried."""
import http.client
import json
import time
import urllib.error
import urllib.request

ELEM = "element-6066-11e4-a52e-4f735466cecf"


class WebDriver:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.sid = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        safe = method == "GET" or path.endswith("/element")
        for attempt in range(3):
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.load(r)["value"]
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"{method} {path} -> {e.code} {e.read()[:500]!r}") from None
            except (ConnectionResetError, http.client.RemoteDisconnected):
                if not safe or attempt == 2:
                    raise
                time.sleep(0.2)

    def start(self, binary, args):
        caps = {"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": binary, "args": list(args)}}}}
        self.sid = self.call("POST", "/session", caps, timeout=60)["sessionId"]
        return self.sid

    def s(self, path):
        return f"/session/{self.sid}{path}"

    def find(self, css, timeout=10):
        end = time.time() + timeout
        while True:
            try:
                return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEM]
            except RuntimeError:
                if time.time() > end:
                    raise
                time.sleep(0.2)

    def clear(self, el):
        self.call("POST", self.s(f"/element/{el}/clear"), {})

    def type(self, el, text):
        self.call("POST", self.s(f"/element/{el}/value"), {"text": text})

    def click(self, el):
        self.call("POST", self.s(f"/element/{el}/click"), {})

    def text(self, el):
        return self.call("GET", self.s(f"/element/{el}/text"))

    def title(self):
        return self.call("GET", self.s("/title"))

    def quit(self):
        if self.sid:
            try:
                self.call("DELETE", self.s(""), timeout=20)
            finally:
                self.sid = None
