"""Danube's official Python SDK drives `danube-hooks emulate`; run by tests/emulate_sdk.rs.

Environment (set by the Rust test):
  DANUBE_API_URL, DANUBE_API_KEY  the emulator started with --allow-http --api-key KEY
                                  (read by the SDK itself, as an application would)
  JUDGE_STRICT_URL                a second emulator, without --allow-http

Prints ONE JSON object: what each step found, or the exception it raised
({"raised": class, "status_code", "message"}). The script asserts nothing:
the Rust test holds the expectations, so a failure names the exact one.
Only loopback is touched: the emulator and a receiver this script runs.
"""

import hashlib
import hmac
import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.request

import danube
from danube import DanubeClient

API_URL = os.environ["DANUBE_API_URL"]
API_KEY = os.environ["DANUBE_API_KEY"]
STRICT_URL = os.environ["JUDGE_STRICT_URL"]
EVENT = "tool.execution.completed"
RECEIVER_ANSWER = "judge received it"

found = {"sdk_version": getattr(danube, "__version__", None)}


class Receiver(http.server.BaseHTTPRequestHandler):
    """Keeps every request the emulator delivers and answers 200."""

    arrived = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (the name http.server calls)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with Receiver.lock:
            Receiver.arrived.append(
                {
                    "path": self.path,
                    "signature": self.headers.get("X-Danube-Signature"),
                    "content_type": self.headers.get("Content-Type"),
                    "body": body,
                }
            )
        answer = RECEIVER_ANSWER.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass  # stdout is the JSON answer; stderr stays for real trouble


def raised(err):
    return {
        "raised": type(err).__name__,
        "status_code": getattr(err, "status_code", None),
        "message": str(getattr(err, "message", err)),
    }


def step(name, action):
    """Run one SDK call; record its result or the exception it raised."""
    try:
        found[name] = action()
    except Exception as err:  # every failure is data for the Rust test
        found[name] = raised(err)
    return found[name]


def webhook(w):
    return {
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "is_active": w.is_active,
        "description": w.description,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    }


def send_event(event, data):
    """POST /v1/emulator/events: the emulator's own door, not part of the SDK."""
    request = urllib.request.Request(
        API_URL + "/v1/emulator/events",
        data=json.dumps({"event": event, "data": data}).encode(),
        headers={"Content-Type": "application/json", "danube-api-key": API_KEY},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return {"status": answer.status, "body": json.loads(answer.read() or b"null")}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": err.read().decode(errors="replace")[:500]}


def signature_valid(secret, header, body):
    """X-Danube-Signature: t=<unix>,sha256=<hex> over `<t>.<raw body>` (SPEC §1)."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        expected = hmac.new(
            secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts["sha256"])
    except Exception:
        return False


def settled_deliveries(client, webhook_id, count, wait_s=30.0):
    """get_deliveries until `count` records are there and none is `pending`
    (or time runs out: the Rust test then sees what was there)."""
    deadline = time.monotonic() + wait_s
    while True:
        records = client.webhooks.get_deliveries(webhook_id, limit=5)
        if len(records) >= count and all(r.status != "pending" for r in records):
            return records
        if time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = "http://127.0.0.1:%d" % server.server_address[1]

    # The application's client: base URL and key from DANUBE_API_URL / DANUBE_API_KEY.
    client = DanubeClient(max_retries=0)

    step("list_before", lambda: [w.id for w in client.webhooks.list()])

    try:
        created = client.webhooks.create(
            url=receiver + "/first",
            events=[EVENT, "workflow.failed"],
            description="the SDK judge",
        )
    except Exception as err:  # nothing after this can run without a webhook
        found["create"] = raised(err)
        return
    found["create"] = dict(
        webhook(created),
        secret_prefix=created.secret[:6],
        secret_length=len(created.secret),
    )
    webhook_id = created.id

    step("list_after_create", lambda: [webhook(w) for w in client.webhooks.list()])
    step(
        "update_url",
        lambda: webhook(client.webhooks.update(webhook_id, url=receiver + "/second")),
    )
    step(
        "update_pause",
        lambda: webhook(client.webhooks.update(webhook_id, is_active=False)),
    )
    found["event_while_paused"] = send_event(EVENT, {"n": 0})
    step(
        "update_resume",
        lambda: webhook(client.webhooks.update(webhook_id, is_active=True)),
    )

    # Two events, one at a time, so that the log's order and `limit` show.
    found["event"] = send_event(EVENT, {"tool_id": "judge-1", "status": "success", "n": 1})
    step(
        "deliveries_first",
        lambda: [r.model_dump() for r in settled_deliveries(client, webhook_id, 1)],
    )
    found["event_second"] = send_event(EVENT, {"n": 2})
    step(
        "deliveries",
        lambda: [r.model_dump() for r in settled_deliveries(client, webhook_id, 2)],
    )
    with Receiver.lock:
        arrived = list(Receiver.arrived)
    found["arrived"] = [
        {
            "path": a["path"],
            "content_type": a["content_type"],
            "signature_valid": signature_valid(created.secret, a["signature"] or "", a["body"]),
            "body": json.loads(a["body"] or b"null"),
        }
        for a in arrived
    ]
    step(
        "deliveries_limit_1",
        lambda: [r.model_dump() for r in client.webhooks.get_deliveries(webhook_id, limit=1)],
    )

    # The SDK's errors.
    intruder = DanubeClient(api_key="not-the-key", base_url=API_URL, max_retries=0)
    step("bad_key", lambda: [w.id for w in intruder.webhooks.list()])
    step("unknown_update", lambda: webhook(client.webhooks.update("wh_unknown", is_active=False)))
    step("unknown_deliveries", lambda: client.webhooks.get_deliveries("wh_unknown"))
    strict = DanubeClient(api_key=API_KEY, base_url=STRICT_URL, max_retries=0)
    step(
        "http_url_strict",
        lambda: webhook(strict.webhooks.create(url=receiver + "/plain", events=[EVENT])),
    )
    step("list_strict", lambda: [w.id for w in strict.webhooks.list()])

    # The device flow, approved by the emulator at the first poll.
    code = step("device_code", lambda: client.device_auth.request_code("the SDK judge").model_dump())
    if "device_code" in code:
        step(
            "device_token",
            lambda: client.device_auth.poll_token(code["device_code"]).model_dump(),
        )

    step("delete", lambda: client.webhooks.delete(webhook_id))
    step("list_after_delete", lambda: [w.id for w in client.webhooks.list()])
    step("delete_again", lambda: client.webhooks.delete(webhook_id))

    server.shutdown()


if __name__ == "__main__":
    try:
        main()
    finally:
        # One answer whatever happened; default=str keeps it whole should a
        # later SDK put a non-JSON type (a datetime) in a model.
        print(json.dumps(found, default=str))
