"""A Wegent-shaped `/local-executor` Socket.IO server on the backend's own stack.

python-socketio 5.15.1 / python-engineio 4.12.3 served over ASGI by uvicorn, as the Wegent backend
does (protocol.md §1). It implements what the device channel needs from the server:

* connect auth (§1.1): `wg-` API keys (SHA-256 lookup) and HS256 JWTs (`exp` checked, `sub`
  required, `scope` refused), with the exact CONNECT_ERROR messages, plus the 30-per-30 s rate limit;
* `device:register` (§2) and `device:heartbeat` (§3) with their success and error acks, including
  `Device ID mismatch`, `Runtime instance ID mismatch` and the `runtime_capacity` checks;
* the `device:sync_capabilities` call right after a successful register (§14.2).

Test hooks (not part of Wegent): `test:dispatch_task {"size": N}` makes the server emit a
`task:execute` of about N bytes; `note` events are counted. Lines on stdout, one per fact, flushed:

    JWT <token>            a valid login token for user "admin" (printed first)
    LISTENING <port>       bound and accepting
    REGISTERED <device_id>
    SYNC_ACK <json>        the device's answer to device:sync_capabilities
    NOTE <chars>           a `note` event arrived, with its JSON length

Usage: sio_server.py [--port 0] [--api-key wg-...] [--secret S] [--ping-interval 25]
                     [--ping-timeout 20] [--rate-limit 30]
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import socket
import sys
import time

try:
    import socketio
    import uvicorn
except ImportError as e:  # the Rust test turns this into a clear failure
    print(f"IMPORT_ERROR {e}", file=sys.stderr, flush=True)
    sys.exit(3)

NS = "/local-executor"
MAX_HTTP_BUFFER_SIZE = 1_000_000
RATE_WINDOW_SECONDS = 30


def say(*parts):
    print(*parts, flush=True)


# ---- auth (protocol.md §1.1) ------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_jwt(secret: str, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


def verify_jwt(secret: str, token: str):
    """The claims of a valid login JWT, else None (bad signature, expired, no sub, scoped)."""
    try:
        header, body, signature = token.split(".")
        expected = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, b64url_decode(signature)):
            return None
        claims = json.loads(b64url_decode(body))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
        return None
    if "scope" in claims or not claims.get("sub"):
        return None
    return claims


class Auth:
    def __init__(self, secret, api_keys, rate_limit):
        self.secret = secret
        self.api_key_hashes = {hashlib.sha256(k.encode()).hexdigest() for k in api_keys}
        self.rate_limit = rate_limit
        self.attempts = {}

    def rate_limited(self, ip):
        now = time.monotonic()
        recent = [t for t in self.attempts.get(ip, []) if now - t < RATE_WINDOW_SECONDS]
        recent.append(now)
        self.attempts[ip] = recent
        return len(recent) > self.rate_limit

    def check(self, auth, ip):
        """The session for an accepted connect; raises ConnectionRefusedError otherwise."""
        refuse = socketio.exceptions.ConnectionRefusedError
        if self.rate_limited(ip):
            raise refuse("Too many device connection attempts")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            raise refuse("Missing authentication token")
        if token.startswith("wg-"):
            if hashlib.sha256(token.encode()).hexdigest() not in self.api_key_hashes:
                raise refuse("Invalid or expired API key")
            return {"user_name": "api-key-user", "auth_type": "api_key"}
        claims = verify_jwt(self.secret, token)
        if claims is None:
            raise refuse("Invalid or expired token")
        return {"user_name": claims["sub"], "auth_type": "jwt"}


# ---- payload validation (protocol.md §2, §3) ---------------------------------------------------

def invalid(model, errors):
    lines = [f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} for {model}"]
    for field, message in errors:
        lines += [field, f"  {message}"]
    return {"error": "Invalid payload: " + "\n".join(lines)}


def str_field(payload, name, errors, required=False, min_len=0, max_len=None):
    value = payload.get(name)
    if value is None:
        if required:
            errors.append((name, "Field required"))
        return
    if not isinstance(value, str):
        errors.append((name, "Input should be a valid string"))
    elif len(value) < min_len:
        errors.append((name, f"String should have at least {min_len} character"))
    elif max_len is not None and len(value) > max_len:
        errors.append((name, f"String should have at most {max_len} characters"))


def validate_register(payload):
    errors = []
    if not isinstance(payload, dict):
        return [("body", "Input should be a valid dictionary")]
    str_field(payload, "device_id", errors, required=True, min_len=1, max_len=100)
    str_field(payload, "name", errors, required=True, min_len=1, max_len=100)
    if payload.get("device_type", "local") not in ("local", "app", "cloud", "remote"):
        errors.append(("device_type", "Input should be 'local', 'app', 'cloud' or 'remote'"))
    if payload.get("bind_shell", "claudecode") not in ("claudecode", "openclaw"):
        errors.append(("bind_shell", "Input should be 'claudecode' or 'openclaw'"))
    str_field(payload, "executor_version", errors, max_len=50)
    str_field(payload, "runtime_instance_id", errors, max_len=100)
    return errors


def validate_capacity(capacity, errors):
    if capacity is None:
        return
    if not isinstance(capacity, dict):
        errors.append(("runtime_capacity", "Input should be a valid dictionary"))
        return
    limit, active, queued = (capacity.get(k) for k in ("limit", "active", "queued"))
    ids = capacity.get("active_task_ids", [])
    if not isinstance(limit, int) or not 1 <= limit <= 20:
        errors.append(("runtime_capacity.limit", "Input should be between 1 and 20"))
    if not isinstance(active, int) or active < 0:
        errors.append(("runtime_capacity.active", "Input should be >= 0"))
    if not isinstance(queued, int) or queued < 0:
        errors.append(("runtime_capacity.queued", "Input should be >= 0"))
    if (not isinstance(ids, list) or len(ids) > 20 or len(set(map(str, ids))) != len(ids)
            or any(not isinstance(i, str) or not i for i in ids)):
        errors.append(("runtime_capacity.active_task_ids",
                       "Value error, active_task_ids must be unique non-empty strings"))
    elif isinstance(active, int) and len(ids) != active:
        errors.append(("runtime_capacity",
                       "Value error, active_task_ids must identify every active Runtime task"))


def validate_heartbeat(payload):
    errors = []
    if not isinstance(payload, dict):
        return [("body", "Input should be a valid dictionary")]
    str_field(payload, "device_id", errors, required=True)
    rid = payload.get("runtime_instance_id")
    if rid is not None:
        str_field(payload, "runtime_instance_id", errors, min_len=1, max_len=100)
    for task_id in payload.get("running_task_ids") or []:
        if isinstance(task_id, bool) or not (
                isinstance(task_id, int) or (isinstance(task_id, str) and task_id.isdigit())):
            errors.append(("running_task_ids", "Input should be a valid integer"))
            break
    str_field(payload, "executor_version", errors, max_len=50)
    validate_capacity(payload.get("runtime_capacity"), errors)
    return errors


# ---- the server --------------------------------------------------------------------------------

def build(args):
    sio = socketio.AsyncServer(
        async_mode="asgi",
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_http_buffer_size=MAX_HTTP_BUFFER_SIZE,
        cors_allowed_origins="*",
    )
    auth = Auth(args.secret, args.api_key, args.rate_limit)

    @sio.on("connect", namespace=NS)
    async def connect(sid, environ, auth_data):
        session = auth.check(auth_data, environ.get("REMOTE_ADDR", "?"))
        session.update(device_id=None, registered=False, runtime_instance_id=None)
        await sio.save_session(sid, session, namespace=NS)

    @sio.on("device:register", namespace=NS)
    async def register(sid, payload):
        errors = validate_register(payload)
        if errors:
            return invalid("DeviceRegisterPayload", errors)
        async with sio.session(sid, namespace=NS) as session:
            session.update(device_id=payload["device_id"], registered=True,
                           runtime_instance_id=payload.get("runtime_instance_id"))
        say("REGISTERED", payload["device_id"])
        sio.start_background_task(sync_capabilities, sid)
        return {"success": True, "device_id": payload["device_id"]}

    async def sync_capabilities(sid):
        request = {"mode": "replace", "skills": [], "plugins": [], "mcps": []}
        try:
            ack = await sio.call("device:sync_capabilities", request, to=sid, namespace=NS,
                                 timeout=120)
            say("SYNC_ACK", json.dumps(ack, sort_keys=True))
        except socketio.exceptions.TimeoutError:
            say("SYNC_TIMEOUT")

    @sio.on("device:heartbeat", namespace=NS)
    async def heartbeat(sid, payload):
        errors = validate_heartbeat(payload)
        if errors:
            return invalid("DeviceHeartbeatPayload", errors)
        session = await sio.get_session(sid, namespace=NS)
        if not session.get("registered") or payload["device_id"] != session.get("device_id"):
            return {"error": "Device ID mismatch"}
        registered_rid = session.get("runtime_instance_id")
        sent_rid = payload.get("runtime_instance_id")
        if registered_rid and sent_rid is not None and sent_rid != registered_rid:
            return {"error": "Runtime instance ID mismatch"}
        return {"success": True}

    @sio.on("device:status", namespace=NS)
    async def status(sid, payload):
        return {"success": True}

    @sio.on("note", namespace=NS)
    async def note(sid, payload):
        say("NOTE", len(json.dumps(payload)))

    @sio.on("test:dispatch_task", namespace=NS)
    async def dispatch_task(sid, payload):
        size = int(payload.get("size", 72_000))
        task = {"task_id": 3, "subtask_id": 4, "message_id": 2, "prompt": "say hello",
                "system_prompt": "s" * size}
        await sio.emit("task:execute", task, to=sid, namespace=NS)

    return socketio.ASGIApp(sio, socketio_path="/socket.io")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", action="append", default=[])
    parser.add_argument("--secret", default="wegent-test-secret")
    parser.add_argument("--ping-interval", type=float, default=25)
    parser.add_argument("--ping-timeout", type=float, default=20)
    parser.add_argument("--rate-limit", type=int, default=30)
    args = parser.parse_args()

    say("JWT", mint_jwt(args.secret, {"sub": "admin", "user_id": 1, "exp": int(time.time()) + 3600}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    config = uvicorn.Config(build(args), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    say("LISTENING", sock.getsockname()[1])
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
