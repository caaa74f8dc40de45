"""A stand-in for Rasa's REST channel, for fast gateway tests (the end-to-end tests use the real
Rasa with the trained model). It records what the gateway sent and can be made slow or down."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRasa:
    def __init__(self, token: str = "rasa-token"):
        self.token = token
        self.calls: list[dict] = []
        self.events: list[tuple] = []       # (sender, events) appended to trackers
        self.replaced: list[tuple] = []     # (sender, events) a tracker was replaced with (XOA)
        self.down = False
        self.delay = 0.0
        self.custom: list[dict] = []        # custom payloads added after each reply (asks, reading)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _send(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if fake.down:
                    return self._send(503, {"status": "down"})
                if "token=" + fake.token not in self.path:
                    return self._send(401, {"status": "unauthorized"})
                self._send(200, {"status": "ok"})

            def do_PUT(self):
                """Replace a tracker's events (the gateway's XOA sends [])."""
                length = int(self.headers.get("Content-Length", 0))
                data = json.loads(self.rfile.read(length) or b"[]")
                if fake.down:
                    return self._send(503, {"error": "down"})
                if "token=" + fake.token not in self.path or "/tracker/events" not in self.path:
                    return self._send(401, {"error": "unauthorized"})
                sender = self.path.split("/conversations/", 1)[1].split("/", 1)[0]
                with fake._lock:
                    fake.replaced.append((sender, data))
                return self._send(200, {"sender_id": sender, "events": data})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                data = json.loads(self.rfile.read(length) or b"{}")
                if fake.down:
                    return self._send(503, {"error": "down"})
                if "token=" + fake.token not in self.path:
                    return self._send(401, {"error": "unauthorized"})
                if "/tracker/events" in self.path:
                    sender = self.path.split("/conversations/", 1)[1].split("/", 1)[0]
                    with fake._lock:
                        fake.events.append((sender, data))
                    return self._send(200, {"sender_id": sender, "events": []})
                if fake.delay:
                    import time
                    time.sleep(fake.delay)
                with fake._lock:
                    fake.calls.append(data)
                text = data.get("message", "")
                self._send(200, [{"recipient_id": data["sender"], "text": f"bot: {text[:40]}"}]
                           + [{"recipient_id": data["sender"], "custom": c} for c in fake.custom])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":      # a stand-in Rasa in its own process, for bench/gateway.py
    import sys
    import time

    fake = FakeRasa(token=sys.argv[2])
    fake.server.server_close()
    from http.server import ThreadingHTTPServer as _S

    fake.server = _S(("127.0.0.1", int(sys.argv[1])), fake.server.RequestHandlerClass)
    fake.server.daemon_threads = True
    fake.thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    fake.start()
    while True:
        time.sleep(3600)
