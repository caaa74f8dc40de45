"""`helpline` console command.

    helpline classify [--model PATH] [--jsonl]   one JSON result per input line (TAXONOMY.md)
    helpline train [--if-stale] [--config PATH]   train models/helpline.tar.gz
    helpline chat [--url URL]                      talk to a running bot in the terminal
    helpline run                                   start Rasa + action server on loopback, then chat
    helpline eval [--folds N]                      NLU cross-validation + dev-set score → reports/
    helpline kb check|import FILE|template         knowledge base: verification state, places CSV
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bot import paths


def _quiet_frameworks() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("rasa", "tensorflow", "absl", "h5py", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:  # Rasa 3.6 logs parse results (with the message text) through structlog at debug
        from rasa.utils.log_utils import configure_structlog

        configure_structlog(logging.ERROR)
    except ImportError:
        pass


# --- classify -----------------------------------------------------------------------------
def _resolve_model(arg: str | None) -> Path | None:
    if arg:
        p = Path(arg)
        return paths.latest_model(p) if p.is_dir() else (p if p.exists() else None)
    return paths.latest_model()


def cmd_classify(args) -> int:
    model = _resolve_model(args.model)
    if model is None:
        print(f"helpline classify: no trained model found ({args.model or paths.MODELS}). "
              "Train one with `make model` or `helpline train`.", file=sys.stderr)
        return 2
    # Results go to a private copy of stdout; anything a library prints goes to stderr, so the
    # JSON stream stays clean.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    _quiet_frameworks()
    from bot.classifier import Classifier

    clf = Classifier.load(model)
    stdin = sys.stdin.buffer
    for raw in stdin:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if args.jsonl:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record.get("text", "") if isinstance(record, dict) else str(record)
                if not isinstance(record, dict):
                    record = {"text": text}
            except json.JSONDecodeError:
                record = {"text": line, "error": "invalid JSON line, classified as text"}
                text = line
        else:
            record, text = {}, line
        result = clf.classify(str(text))
        out.write(json.dumps({**record, **result}, ensure_ascii=False) + "\n")
        out.flush()
    return 0


# --- train ----------------------------------------------------------------------------------
def is_stale(model: Path | None) -> bool:
    """Missing, older than one of its inputs, or trained on another set of input files."""
    if model is None or model.stat().st_mtime < paths.newest_mtime(paths.TRAINING_INPUTS):
        return True
    manifest = _manifest(model)
    return not manifest.exists() or manifest.read_text("utf-8").splitlines() != paths.input_files(paths.TRAINING_INPUTS)


def _manifest(model: Path) -> Path:
    return model.with_name(model.name.replace(".tar.gz", "") + ".inputs")


def cmd_train(args) -> int:
    model = paths.MODELS / f"{paths.MODEL_NAME}.tar.gz"
    if args.if_stale and not is_stale(model if model.exists() else None):
        print(f"model is up to date: {model.relative_to(paths.ROOT)}")
        return 0
    import subprocess

    cmd = [sys.executable, "-m", "rasa", "train", "--config", str(args.config or paths.CONFIG),
           "--domain", str(paths.DOMAIN), "--data", str(paths.NLU_DATA), str(paths.DIALOGUE_DATA),
           "--out", str(args.out or paths.MODELS), "--fixed-model-name", args.name or paths.MODEL_NAME,
           "--force"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"}
    files = paths.input_files(paths.TRAINING_INPUTS)      # as they were when training began
    rc = subprocess.call(cmd, cwd=paths.ROOT, env=env)
    if rc == 0:
        trained = Path(args.out or paths.MODELS) / f"{args.name or paths.MODEL_NAME}.tar.gz"
        _manifest(trained).write_text("\n".join(files) + "\n", "utf-8")
    return rc


# --- chat / run -----------------------------------------------------------------------------
def cmd_chat(args) -> int:
    from bot.chat import chat_loop

    return chat_loop(args.url, sender=args.sender)


def cmd_run(args) -> int:
    from bot.runner import run_bot_and_chat, run_system

    if args.chat:
        return run_bot_and_chat(model=_resolve_model(args.model), chat=True)
    return run_system(model=_resolve_model(args.model), port=args.port)


def cmd_gateway(args) -> int:
    from webhook.serve import run_gateway

    return run_gateway(args.host, args.port)


def cmd_telegram_webhook(args) -> int:
    """Register {HELPLINE_PUBLIC_URL}/webhooks/telegram with Telegram, with the secret token."""
    from webhook.channels.telegram import TelegramAdapter
    from webhook.settings import Settings

    settings = Settings.from_env()
    if not settings.telegram_enabled:
        print("TELEGRAM_TOKEN and TELEGRAM_SECRET_TOKEN are required", file=sys.stderr)
        return 2
    adapter = TelegramAdapter(settings)
    try:
        url = settings.public_url.rstrip("/") + "/webhooks/telegram"
        ok = adapter.set_webhook(url)
        print(f"setWebhook {url}: {'ok' if ok else 'refused'}")
        return 0 if ok else 1
    finally:
        adapter.close()


def cmd_worker(args) -> int:
    from webhook.serve import run_worker

    return run_worker(args.interval)


def cmd_staff(args) -> int:
    """Console accounts: add, password, disable, enable, list. Passwords are read from stdin
    (--password-stdin) or prompted; with --generate a random one is printed once."""
    import getpass
    import secrets

    from webhook.console import auth
    from webhook.settings import Settings
    from webhook.app import Gateway

    gw = Gateway(Settings.from_env(run_dispatcher=False))
    try:
        if args.action == "list":
            for username, name, role in auth.active_staff(gw):
                print(f"{username}\t{role}\t{name}")
            return 0
        if not args.username:
            print("a user name is required", file=sys.stderr)
            return 2
        password = None
        if args.action in ("add", "password"):
            if args.generate:
                password = secrets.token_urlsafe(12)
            elif args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass("password (at least 10 characters): ")
        if args.action == "add":
            auth.create_staff(gw, args.username, password, args.role, args.name, actor="cli")
        elif args.action == "password":
            auth.set_password(gw, args.username, password, actor="cli")
        else:
            auth.set_active(gw, args.username, args.action == "enable", actor="cli")
        print(f"{args.action}: {args.username}" + (f"  password: {password}" if args.generate else ""))
        return 0
    except auth.StaffError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        gw.close()


def cmd_stats(args) -> int:
    """Anonymised statistics (suppressed): indicators d and đ, breakdowns, close a year."""
    import datetime as dt

    from webhook.app import Gateway
    from webhook.settings import Settings
    from webhook.stats import episodes, export, report

    gw = Gateway(Settings.from_env(run_dispatcher=False))
    try:
        year = args.year or dt.date.today().year
        if args.action == "close-year":
            print(f"year {year}: " + ("closed, its pseudonyms can no longer be linked" if episodes.close_year(gw, year)
                                      else "was already closed"))
            return 0
        if args.action in ("rebuild", "check"):
            from webhook.stats import cube

            return cube.cli(gw, args.action, args.year)
        if args.action == "export":
            if not args.out:
                print("--out FILE is required (.xlsx: every table; .docx: the yearly report)", file=sys.stderr)
                return 2
            out = Path(args.out)
            if out.suffix == ".xlsx":
                out.write_bytes(export.to_xlsx(report.yearly_tables(gw, year)))
            elif out.suffix == ".docx":
                out.write_bytes(report.yearly_docx(gw, year))
            else:
                print("the file must end in .xlsx or .docx", file=sys.stderr)
                return 2
            print(f"written {out}")
            return 0
        if args.action == "indicators":
            table = report.indicator_table(gw, year, args.period)
        elif args.by and args.period and args.cross:
            table = report.cross(gw, year, args.by, args.period)
        else:
            table = report.table(gw, year, args.by or "gbv_type")
        print(export.FORMATS[args.format](table))
        return 0
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        gw.close()


def cmd_broadcast(args) -> int:
    """Campaign broadcasts (webhook/broadcast): calendar, list, create, preview, approve,
    schedule, pause, resume, cancel, report, send (in the foreground, with a progress bar)."""
    import datetime as dt
    import json as _json

    from webhook.app import Gateway
    from webhook.broadcast import calendar, campaigns as C
    from webhook.broadcast import sender
    from webhook.hours import TZ
    from webhook.settings import Settings

    gw = Gateway(Settings.from_env(run_dispatcher=False))
    try:
        if args.action == "calendar":
            for occ, first, last in calendar.upcoming(dt.date.today()):
                print(f"{first:%d/%m/%Y} – {last:%d/%m/%Y}  {occ.key:<18} content: {occ.content}")
            return 0
        if args.action == "list":
            for c in C.listing(gw):
                print(f"{c.id:>5}  {c.state:<10} {c.content:<18} {c.audience:<8} {c.planned or 0:>8}  {c.name}")
            return 0
        if args.action == "subscribers":
            from sqlalchemy import func, select

            from webhook.db import transaction
            from webhook.models import Contact, Subscriber
            with transaction(gw.Session) as s:
                rows = s.execute(select(Subscriber.status, Subscriber.audience, Contact.channel, func.count())
                                 .join(Contact, Contact.id == Subscriber.contact_id)
                                 .group_by(Subscriber.status, Subscriber.audience, Contact.channel)).all()
            for status, audience, channel, n in sorted(rows):
                print(f"{status:<13} {audience:<8} {channel:<9} {n:>8}")
            return 0
        if args.action == "create":
            if not (args.name and args.content and args.actor):
                print("create needs --name, --content and --as USERNAME", file=sys.stderr)
                return 2
            cid = C.create(gw, args.actor, args.name, args.content, audience=args.audience, locality=args.locality,
                           language=args.language, channels=args.channels.split(",") if args.channels else None,
                           occasion=args.occasion)
            print(f"campaign {cid} created (draft): preview it, then another supervisor approves it")
            return 0
        if args.id is None:
            print(f"{args.action} needs a campaign id", file=sys.stderr)
            return 2
        if args.action == "preview":
            p = C.preview(gw, args.id)
            print(f"recipients: {p.total} " + " ".join(f"{k}={v}" for k, v in sorted(p.recipients.items()))
                  + (f" (paused, not sent: {p.paused})" if p.paused else ""))
            for lang, n in sorted(p.sms_segments.items()):
                print(f"SMS {lang}: {n} segment(s)")
            if p.sms_cost is not None:
                print(f"SMS cost estimate: {p.sms_cost:,.2f}")
            for (channel, lang), body in sorted(p.texts.items()):
                print(f"--- {channel} / {lang} ---\n{body}")
            return 0
        if args.action == "report":
            r = C.report(gw, args.id)
            print(_json.dumps(r, ensure_ascii=False, indent=2) if args.format == "json" else
                  f"campaign {r['campaign']} ({r['state']}): planned {r['planned']}, still queued {r['queued']}\n"
                  + "\n".join(f"  {k:<22} {v:>8}" for k, v in sorted(r["by_state"].items()))
                  + ("\n" + "\n".join(f"  {k:<40} {v:>8}" for k, v in sorted(r["by_reason"].items()))
                     if r["by_reason"] else ""))
            return 0
        if args.action == "send":
            return _broadcast_progress(gw, args.id, sender, C)
        if not args.actor:
            print(f"{args.action} needs --as USERNAME (recorded in the audit log)", file=sys.stderr)
            return 2
        if args.action == "approve":
            C.approve(gw, args.id, args.actor)
        elif args.action == "schedule":
            at = None
            if args.at:
                at = dt.datetime.strptime(args.at, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).timestamp()
            start = C.schedule(gw, args.id, args.actor, at)
            print(f"campaign {args.id} scheduled for {dt.datetime.fromtimestamp(start, TZ):%Y-%m-%d %H:%M} (Vietnam)")
            return 0
        elif args.action == "pause":
            C.pause(gw, args.id, args.actor)
        elif args.action == "resume":
            C.resume(gw, args.id, args.actor)
        elif args.action == "cancel":
            print(f"{C.cancel(gw, args.id, args.actor)} unsent messages cancelled")
        print(f"campaign {args.id}: {args.action} done")
        return 0
    except (C.CampaignError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        gw.close()


def _broadcast_progress(gw, campaign_id: int, sender, C) -> int:
    """Send one campaign in this process until it is done, drawing a progress bar (Ctrl-C stops
    after the message being sent; run it again to go on)."""
    import threading

    stop = threading.Event()
    started = time.monotonic()
    try:
        while True:
            sender.run_once(gw, budget=1.0, only=campaign_id, stop=stop)
            r = C.report(gw, campaign_id)
            done, total = r["finished"], max(1, r["planned"])
            width = 30
            bar = "#" * int(width * done / total) + "." * (width - int(width * done / total))
            rate = r["by_state"].get("sent", 0) / max(0.001, time.monotonic() - started)
            print(f"\r[{bar}] {done}/{r['planned']} sent {r['by_state'].get('sent', 0)} "
                  f"skipped {r['by_state'].get('skipped', 0)} opted out {r['by_state'].get('opted_out', 0)} "
                  f"({rate:.1f}/s) {r['state']}   ", end="", file=sys.stderr, flush=True)
            if r["state"] in (C.DONE, C.CANCELLED):
                print(file=sys.stderr)
                return 0
            if r["state"] in (C.PAUSED, C.DRAFT, C.APPROVED):
                print(f"\ncampaign is {r['state']}", file=sys.stderr)
                return 1
            if r["queued"] and not r["by_state"].get("sending"):
                time.sleep(0.2)
    except KeyboardInterrupt:
        stop.set()
        print("\nstopped; run it again to go on", file=sys.stderr)
        return 130


def cmd_keys(args) -> int:
    """Encryption keys at rest: generate a new one, re-encrypt with the first (rotate), check."""
    if args.action == "generate":
        from webhook.keys import generate

        print(generate())
        return 0
    from webhook import keys
    from webhook.app import Gateway
    from webhook.settings import ConfigError, Settings

    try:
        gw = Gateway(Settings.from_env(run_dispatcher=False))
    except (ConfigError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        return keys.cli(gw, args.action)
    finally:
        gw.close()


def cmd_purge(args) -> int:
    """Retention: blank old texts and forget old addresses now (the worker does it hourly)."""
    from webhook.app import Gateway
    from webhook.retention import purge
    from webhook.settings import Settings

    gw = Gateway(Settings.from_env(run_dispatcher=False))
    try:
        out = purge(gw, days=args.days, dry_run=args.dry_run)
    finally:
        gw.close()
    print(("would purge: " if args.dry_run else "purged: ") + " ".join(f"{k}={v}" for k, v in out.items()))
    return 0


# --- knowledge base ---------------------------------------------------------------------------
def _kb_checks(use_db: bool) -> dict:
    """The checks recorded in the console, when the gateway's database can be read (else none:
    the files alone)."""
    if not use_db:
        return {}
    try:
        from webhook.app import Gateway
        from webhook.settings import Settings

        gw = Gateway(Settings.from_env(run_dispatcher=False))
    except Exception as exc:                  # noqa: BLE001 - the files alone are still a report
        print(f"(the database cannot be read: {type(exc).__name__}; only data/kb/ is used)", file=sys.stderr)
        return {}
    try:
        return gw.kb.checks()
    finally:
        gw.close()


def cmd_kb(args) -> int:
    """The knowledge base: its verification state (exit 1 only when a reply states an expired,
    future or unknown fact), the provincial office's CSV import of places, and the template of
    the places still missing."""
    from bot.kb import check as K
    from bot.kb import importer

    if args.action == "check":
        from webhook.broadcast.content import citations

        report = K.check(checks=_kb_checks(not args.no_db), citations=K.domain_citations() + citations())
        print(K.format_report(report, verbose=not args.quiet))
        return 1 if report.errors else 0
    if args.action == "template":
        text = importer.template()
        if args.file and args.file != "-":
            Path(args.file).write_text(text, "utf-8")
            print(f"wrote {args.file}: {text.count(chr(10)) - 1} rows to fill in")
        else:
            sys.stdout.write(text)
        return 0
    if not args.file:
        print("helpline kb import: give the CSV file (helpline kb import places.csv)", file=sys.stderr)
        return 2
    try:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"helpline kb import: cannot read {args.file}: {type(exc).__name__}", file=sys.stderr)
        return 2
    result = importer.validate(raw)
    if result.errors:
        print(f"nothing imported: {len(result.errors)} problem(s)", file=sys.stderr)
        for e in result.errors:
            print("  " + e, file=sys.stderr)
        return 2
    importer.merge(result, write=not args.dry_run)
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {len(result.rows)} row(s) into data/kb/places.csv: {result.added} added, {result.replaced} "
          f"replaced, {result.unchanged} unchanged")
    return 0


# --- eval -----------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from bot.evaluate import run_eval

    _quiet_frameworks()
    return run_eval(folds=args.folds, model=_resolve_model(args.model), skip_cv=args.skip_cv,
                    cases=[Path(c) for c in args.cases], only=args.only, misses=not args.no_misses)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="helpline", description="Vietnamese GBV helpline assistant")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("classify", help="classify messages from stdin (one per line, or JSONL)")
    p.add_argument("--model", help="model file or directory (default: newest in models/)")
    p.add_argument("--jsonl", action="store_true", help="input lines are JSON objects with a 'text' field")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("train", help="train the Rasa model")
    p.add_argument("--if-stale", action="store_true", help="only when the model is missing or older than its data")
    p.add_argument("--config", help="pipeline config (default bot/config.yml)")
    p.add_argument("--out", help="output directory (default models/)")
    p.add_argument("--name", help="model file name without .tar.gz")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("chat", help="chat with a running bot in the terminal")
    p.add_argument("--url", default=os.environ.get("HELPLINE_RASA_URL", "http://127.0.0.1:5005"))
    p.add_argument("--sender", default=None)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("run", help="start the gateway, the worker, Rasa and the action server on loopback")
    p.add_argument("--model")
    p.add_argument("--port", type=int, default=int(os.environ.get("HELPLINE_PORT", "8000")))
    p.add_argument("--chat", action="store_true", help="only Rasa and the action server, with a terminal chat")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("gateway", help="serve the gateway (webhooks, web chat, API) on a threaded server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("HELPLINE_PORT", "8000")))
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("telegram-webhook", help="register the gateway's Telegram webhook (HELPLINE_PUBLIC_URL)")
    p.set_defaults(func=cmd_telegram_webhook)

    p = sub.add_parser("worker", help="replay deferred messages, retry sends (run one or more)")
    p.add_argument("--interval", type=float, default=1.0)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("staff", help="counsellor console accounts (add, password, disable, enable, list)")
    p.add_argument("action", choices=["add", "password", "disable", "enable", "list"])
    p.add_argument("username", nargs="?")
    p.add_argument("--role", default="counsellor", choices=["counsellor", "supervisor", "admin"])
    p.add_argument("--name", help="display name")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--generate", action="store_true", help="generate a password and print it once")
    p.set_defaults(func=cmd_staff)

    p = sub.add_parser("stats", help="anonymised statistics: indicators d and đ, breakdowns (small cells suppressed)")
    p.add_argument("action", choices=["indicators", "table", "export", "close-year", "rebuild", "check"],
                   help="rebuild/check: the kept counts against the episodes (every year unless --year)")
    p.add_argument("--out", help="export: FILE.xlsx (every table) or FILE.docx (the yearly report)")
    p.add_argument("--year", type=int)
    p.add_argument("--by", help="former_district, locality, gbv_type, channel, age_group, reporter, sex, relationship, risk")
    p.add_argument("--period", choices=["month", "quarter"], default="quarter")
    p.add_argument("--cross", action="store_true", help="table: periods x the --by values")
    p.add_argument("--format", choices=["text", "csv", "json"], default="text")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("purge", help="retention: blank texts and forget addresses older than HELPLINE_RETENTION_DAYS")
    p.add_argument("--days", type=float, help="override HELPLINE_RETENTION_DAYS (default 90)")
    p.add_argument("--dry-run", action="store_true", help="only count")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("keys", help="encryption at rest: generate a key, rotate (re-encrypt with the first key), check")
    p.add_argument("action", choices=["generate", "rotate", "check"])
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("broadcast", help="campaign broadcasts: calendar, create, preview, approve, schedule, send, report")
    p.add_argument("action", choices=["calendar", "list", "subscribers", "create", "preview", "approve", "schedule",
                                      "pause", "resume", "cancel", "report", "send"])
    p.add_argument("id", nargs="?", type=int, help="the campaign")
    p.add_argument("--as", dest="actor", help="your console username (recorded in the audit log)")
    p.add_argument("--name")
    p.add_argument("--content", help="june_dv_month, gbv_action_month, nov25, students")
    p.add_argument("--audience", default="all", choices=["all", "public", "student"])
    p.add_argument("--locality", help="a former district id (data/kb/localities.yml)")
    p.add_argument("--language", choices=["vi", "en"])
    p.add_argument("--channels", help="comma-separated: sms,telegram,zalo,web (default: all)")
    p.add_argument("--occasion", help="june_dv_month, gbv_action_month, nov25 (default: the content's)")
    p.add_argument("--at", help='schedule: "YYYY-MM-DD HH:MM" Vietnam time (default: now)')
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_broadcast)

    p = sub.add_parser("kb", help="knowledge base: check (verification state), import FILE.csv (places), template")
    p.add_argument("action", choices=["check", "import", "template"])
    p.add_argument("file", nargs="?", help="import: the CSV (- for stdin); template: where to write it")
    p.add_argument("--dry-run", action="store_true", help="import: validate and count, write nothing")
    p.add_argument("--quiet", action="store_true", help="check: the summary and the errors only")
    p.add_argument("--no-db", action="store_true", help="check: the files only, not the console's checks")
    p.set_defaults(func=cmd_kb)

    p = sub.add_parser("eval", help="cross-validation and dev-set score, written to reports/")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--model")
    p.add_argument("--skip-cv", action="store_true")
    p.add_argument("--cases", action="append", default=[], metavar="PATH",
                   help="a labelled set (messages or conversations, JSONL) or a folder of them; repeatable")
    p.add_argument("--only", action="store_true", help="score only the --cases sets")
    p.add_argument("--no-misses", action="store_true", help="the figures only, not the messages read wrongly")
    p.set_defaults(func=cmd_eval)

    args = ap.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
