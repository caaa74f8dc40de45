"""The whole system on loopback, for the end-to-end tests and bench/gateway.py: the real Rasa with
the trained model, the real action server, the gateway served over HTTP (the action server posts
escalations to it), and fake Twilio / Telegram / Zalo APIs driven by the real client libraries.
"""
from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path

from bot import runner
from tests.fakes import FakeTelegram, FakeTwilio, FakeZalo

PUBLIC = "https://helpline.example.org"
TG_SECRET = "tg-secret_e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class System:
    def __init__(self, model: Path, tmp: Path, database_url: str | None = None, gateway_overrides: dict | None = None,
                 rate_limits: dict | None = None):
        self.model, self.tmp = Path(model), Path(tmp)
        self.log_dir = self.tmp / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.rasa_port, self.actions_port, self.gateway_port = free_port(), free_port(), free_port()
        self.rasa_token = secrets.token_urlsafe(16)
        self.api_token = secrets.token_urlsafe(16)
        self.endpoints = self.tmp / "endpoints.yml"
        self.endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n')
        self.database_url = database_url or f"sqlite:///{self.tmp / 'gateway.db'}"
        self.overrides = gateway_overrides or {}
        self.rate_limits = rate_limits if rate_limits is not None else {}
        self.env = runner._env({
            "HELPLINE_GATEWAY_URL": f"http://127.0.0.1:{self.gateway_port}",
            "HELPLINE_GATEWAY_TOKEN": self.api_token,
            "HELPLINE_ESCALATION_JOURNAL": str(self.tmp / "escalations.jsonl"),
        })
        self.actions = self.rasa = None
        self.twilio, self.telegram, self.zalo = FakeTwilio(), FakeTelegram(), FakeZalo()
        self.app = self.server = None

    # --- processes -----------------------------------------------------------------------------
    def start(self) -> "System":
        for fake in (self.twilio, self.telegram, self.zalo):
            fake.start()
        self.start_gateway()
        for attempt in range(3):
            self.actions = runner.start_actions(self.actions_port, self.log_dir, self.env)
            time.sleep(1.0)
            if self.actions.poll() is None:
                break
            # another process took the free port between our check and the bind: another port
            self.actions_port = free_port()
            self.endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n')
            self.gw.rasa.actions_urls = [f"http://127.0.0.1:{self.actions_port}"]
        self.start_rasa()
        if not runner._wait(f"http://127.0.0.1:{self.actions_port}/health", self.actions, 120):
            raise RuntimeError("action server did not start:\n" + self.log("actions.log"))
        return self

    def start_rasa(self, wait: bool = True, same_port: bool = False) -> None:
        for attempt in range(3):
            self.rasa = runner.start_rasa(self.model, self.rasa_port, self.rasa_token, self.endpoints, self.log_dir,
                                          self.env)
            if not wait or runner._wait(f"{self.rasa_url}/", self.rasa, 300):
                return
            # another process took the free port between our check and Rasa's bind: try another
            runner.stop([self.rasa])
            if same_port:
                continue
            self.rasa_port = free_port()
            self.gw.rasa.url = self.rasa_url
        raise RuntimeError("Rasa did not start:\n" + self.log("rasa.log")[-3000:])

    def stop_rasa(self) -> None:
        runner.stop([self.rasa])

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def settings(self) -> dict:
        tw, tg, za = self.twilio, self.telegram, self.zalo
        cfg = dict(
            database_url=self.database_url, secret_key="e" * 48, api_token=self.api_token,
            rasa_url=self.rasa_url, rasa_token=self.rasa_token, actions_url=f"http://127.0.0.1:{self.actions_port}",
            rasa_timeout=10.0, public_url=PUBLIC,
            twilio_account_sid=tw.account_sid, twilio_auth_token=tw.auth_token, twilio_from="+15005550006",
            twilio_api_base=tw.url, telegram_token=tg.token, telegram_secret=TG_SECRET,
            telegram_api_base=tg.url + "/bot", zalo_app_id=za.app_id, zalo_secret_key=za.secret_key,
            zalo_oa_secret_key=za.oa_secret_key, zalo_access_token=za.access_token,
            zalo_refresh_token=za.refresh_token, zalo_api_base=za.url, zalo_oauth_base=za.url,
            rate_limits=self.rate_limits,
        )
        cfg.update(self.overrides)
        return cfg

    def start_gateway(self) -> None:
        from webhook.app import create_app
        from webhook.serve import make_server

        self.app = create_app(self.settings())
        self.server = make_server("127.0.0.1", self.gateway_port, self.app)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def gw(self):
        return self.app.extensions["helpline"]

    def log(self, name: str) -> str:
        path = self.log_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        runner.stop([p for p in (self.rasa, self.actions) if p is not None])
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.app is not None:
            self.gw.close()
        for fake in (self.twilio, self.telegram, self.zalo):
            fake.stop()
