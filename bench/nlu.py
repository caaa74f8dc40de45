#!/usr/bin/env python
"""NLU benchmark: our Vietnamese pipeline against the stock Rasa pipeline and the pyvi variant.

For every pipeline config (``ours`` = bot/config.yml as is, ``pyvi`` = the same with
``segmenter: pyvi``, ``stock`` = WhitespaceTokenizer + CountVectorsFeaturizer + DIET with our
DIET/fallback settings) this script measures, in one run:

1. NLU cross-validation (``rasa test nlu --cross-validation``): intent accuracy, macro F1,
   weighted F1 and the CV wall time;
2. a full ``rasa train`` (NLU + dialogue policies) from an empty cache: training wall time;
3. a ``rasa run --enable-api`` server on loopback: startup time, latency of ``POST /model/parse``
   (sequential, keep-alive, after a warm-up), and the server's resident memory (VmRSS, VmHWM).

Usage (from the project root; see bench/README.md):

    .venv/bin/python bench/nlu.py [--folds 3] [--messages 500] [--configs ours,stock,pyvi]
                                  [--out bench/results/nlu.json] [--quick]

Nothing leaves the machine: the only network traffic is to 127.0.0.1. Message texts are never
printed or logged by this script.
"""
from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py (the queue benchmark): as the script's folder it would shadow the standard
# library's `queue`, which urllib3 imports. The script's folder is not needed on the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import atexit
import copy
import datetime as _dt
import hashlib
import importlib.util
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "bot" / "config.yml"
DOMAIN = ROOT / "bot" / "domain"
NLU_DATA = ROOT / "data" / "nlu"
DIALOGUE_DATA = ROOT / "data" / "dialogue"

ALL_CONFIGS = ("ours", "stock", "pyvi")
STAGES = ("cv", "train", "serve")
WARMUP_REQUESTS = 20
STARTUP_TIMEOUT = 240.0
STOP_GRACE = 15.0
REQUEST_TIMEOUT = 30.0

# Realistic messages for the latency test, written for this benchmark (not taken from any
# training or evaluation file). With and without diacritics, teencode, Quảng Nam dialect,
# short and long; they are sent round-robin and never printed.
MESSAGES: List[str] = [
    # greetings, chit-chat, out of scope
    "alo",
    "chào ad",
    "xin chao, cho em hoi chut",
    "hi",
    "cảm ơn bạn nhiều nha",
    "ok cam on ad",
    "bạn là người hay máy vậy?",
    "ban la robot ha",
    "hôm nay trời Tam Kỳ mưa to quá",
    "cho hỏi giá vé xe buýt Hội An đi Đà Nẵng bao nhiêu",
    "ad oi toi nay an gi ngon",
    "kể chuyện cười đi",
    "tạm biệt nhé",
    "👍",
    # hotlines and services
    "số điện thoại đường dây nóng bạo lực gia đình là bao nhiêu",
    "sdt tong dai bao ve tre em la so may vay ad",
    "cho e xin sđt tư vấn với",
    "ở Núi Thành có chỗ nào tạm lánh cho phụ nữ bị chồng đánh không",
    "nha tam lanh o dien ban o dau",
    "mình ở Thăng Bình, muốn gặp người tư vấn tâm lý thì đi đâu",
    "e muon noi chuyen voi tu van vien",
    "trung tâm trợ giúp pháp lý Quảng Nam ở đâu vậy",
    "bệnh viện nào khám giám định thương tích ở Tam Kỳ",
    "tui ở Duy Xuyên, có ai giúp tui không",
    # violence at home (disclosures and questions)
    "chồng tôi đánh tôi",
    "ck e say ruou ve la dap e, e so lam",
    "chong toi hay chui mang va khong cho toi tien tieu, vay co phai bao luc gia dinh khong",
    "bố em đánh mẹ em mỗi tối, em phải làm sao",
    "hắn đánh tui bầm hết mặt rồi, chừ tui phải làm răng",
    "vk ck cai nhau roi ck bop co e, gio e van con run",
    "bạo lực gia đình là gì",
    "luat phong chong bao luc gia dinh 2022 quy dinh gi",
    "bị chồng đánh thì có được xin lệnh cấm tiếp xúc không",
    "thủ tục ly hôn đơn phương và giành quyền nuôi con như thế nào",
    "đánh vợ bị phạt bao nhiêu tiền",
    "me chong e ngay nao cung chui boi, xuc pham e truoc mat con",
    "anh ta dọa giết cả nhà nếu tôi bỏ đi",
    "cuu voi, no dang cam dao o ngoai cua",
    "e k muon song nua",
    "mệt mỏi quá, chắc tôi chết đi cho xong",
    # school bullying, online violence, child protection
    "con tôi bị bạn cùng lớp đánh hội đồng",
    "e bi may ban trong lop bat nat, cô lấy tiền, de doa k cho di hoc",
    "bạo lực học đường thì báo cho ai",
    "có người tung ảnh nhạy cảm của em lên mạng, em phải làm sao",
    "bi nguoi la nhan tin doa phat tan clip neu k chuyen tien",
    "hàng xóm hay đánh đập đứa con riêng, tôi muốn báo thì gọi số nào",
    "thay giao sờ mó con e, e nên làm gì",
    "bị quấy rối tình dục ở chỗ làm thì kiện được không",
    "co nguoi ru di lam ben trung quoc luong cao, co phai lua dao khong",
    "làm sao để tố cáo mà không bị lộ danh tính",
    # subscriptions and data
    "huy dang ky",
    "xóa dữ liệu của tôi",
    "dang ky nhan tin",
    # long messages
    "Chào chị, em tên là ... em năm nay 24 tuổi, lấy chồng được 3 năm. Từ lúc có con thì chồng em "
    "hay uống rượu, về nhà là kiếm cớ chửi bới, có lần còn xô em ngã vào tường. Em không dám nói "
    "với bố mẹ vì sợ mọi người lo. Em muốn biết nếu em báo công an thì chồng em có bị bắt không, "
    "và em có được giữ con không ạ?",
    "e chao ad, e hoc lop 9 o hoi an. may thang nay e bi mot nhom ban trong lop choc gheo, lay do, "
    "quay video e roi dang len nhom zalo cua lop. e ko dam ke voi thay co vi so bi tru thu. "
    "e phai lam sao bay gio, co ai giup e duoc khong",
    "tôi là hàng xóm, tối nào cũng nghe tiếng trẻ con khóc thét và tiếng đánh đập bên nhà kế bên, "
    "hôm qua thấy đứa bé có vết bầm trên tay. tôi sợ báo rồi họ biết là tôi báo. "
    "tôi nên làm gì, gọi cho ai, có cần bằng chứng gì không",
    # very long paste (exercises the 1,500-character NLU cut)
    ("chong toi danh toi nhieu lan, toi da chiu dung qua lau roi. " * 40).strip(),
    # teencode-heavy and mixed
    "ck e ko cho e ve nha ngoai, cam e dung dt, e bj phai lm sao ad",
    "mk bi ng yeu cu danh hoai, mk hok bit ib ai",
    "c oi e dc k, e bi ep cuoi",
]

# Letters for the long-message column, built from sentences written for this benchmark: about 500,
# 1,000 and 2,000 characters, with and without diacritics.
_LETTER_SENTENCES = [
    "Dạ em chào chị, em viết thư này lúc đêm khuya vì không biết kể với ai.",
    "Em lấy chồng được bảy năm, có hai đứa con, đứa lớn học lớp ba.",
    "Chồng em làm phụ hồ, lương tháng nào ổng cũng giữ hết, em xin tiền mua sữa cho con cũng bị chửi.",
    "Mẹ chồng em thì nói đàn bà phải nhịn, chuyện trong nhà không được nói ra ngoài.",
    "Tuần trước ổng đi nhậu về, đập cái ly, xô em vào tường, con em khóc suốt.",
    "Em có về nhà mẹ đẻ mấy hôm nhưng rồi lại phải quay về vì thương con.",
    "Em muốn hỏi nếu em ly hôn thì em có được nuôi hai đứa nhỏ không, và em phải làm giấy tờ ở đâu.",
    "Em cũng không biết ở phường mới thì có ai giúp được em không, em sợ lắm.",
]
_PLAIN = ["".join(c for c in unicodedata.normalize("NFD", t.replace("đ", "d").replace("Đ", "D")) if not unicodedata.combining(c))
          for t in _LETTER_SENTENCES]


def _letter(sentences: List[str], chars: int) -> str:
    out, k = [], 0
    while len(" ".join(out)) < chars:
        out.append(sentences[k % len(sentences)])
        k += 1
    return " ".join(out)[:chars]


LONG_MESSAGES: List[str] = [_letter(src, n) for n in (500, 1000, 2000) for src in (_LETTER_SENTENCES, _PLAIN)]


# --- process hygiene -------------------------------------------------------------------------
_LIVE: Dict[int, subprocess.Popen] = {}


def _kill_group(proc: subprocess.Popen, grace: float = STOP_GRACE) -> Dict[str, Any]:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds. Idempotent."""
    info = {"sigkill": False, "returncode": proc.poll()}
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            info["sigkill"] = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    else:
        # the leader is gone; make sure nothing it started is left in its group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    info["returncode"] = proc.returncode
    _LIVE.pop(proc.pid, None)
    return info


def _kill_all() -> None:
    for proc in list(_LIVE.values()):
        _kill_group(proc, grace=5.0)


def _on_signal(signum, frame):  # turn SIGTERM/SIGHUP into an exception so `finally` blocks run
    raise SystemExit(128 + signum)


def _spawn(cmd: List[str], log_path: Path, env: Dict[str, str]) -> subprocess.Popen:
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()  # the child has its own copy of the descriptor
    _LIVE[proc.pid] = proc
    return proc


def run_cmd(cmd: List[str], log_path: Path, env: Dict[str, str], timeout: float) -> Dict[str, Any]:
    """Run a command in its own process group with a hard timeout; returns rc and wall seconds."""
    start = time.perf_counter()
    proc = _spawn(cmd, log_path, env)
    try:
        rc = proc.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        rc = None
    finally:
        _kill_group(proc, grace=5.0)
    return {"rc": rc, "timed_out": timed_out, "seconds": round(time.perf_counter() - start, 2)}


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(cache_dir: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        # A fresh cache per run: Rasa's training cache (.rasa/cache in the cwd by default) would
        # otherwise make the second config reuse the first one's TEDPolicy, and a rerun reuse
        # everything, so "train s" would measure the cache. It also keeps the project tree clean.
        "RASA_CACHE_DIRECTORY": str(cache_dir),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    env.pop("SANIC_WORKERS", None)  # one worker, so the numbers are one process's
    return env


# --- configs ---------------------------------------------------------------------------------
def _load_yaml(path: Path) -> Dict[str, Any]:
    import yaml

    data = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("pipeline"), list):
        raise SystemExit(f"bench: {path} has no pipeline list")
    return data


def _dump_yaml(data: Dict[str, Any], path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def _find(pipeline: List[Dict[str, Any]], suffix: str) -> Optional[Dict[str, Any]]:
    for item in pipeline:
        if isinstance(item, dict) and str(item.get("name", "")).split(".")[-1] == suffix:
            return item
    return None


def build_configs(names: List[str], tmp: Path) -> Dict[str, Path]:
    base = _load_yaml(CONFIG)
    out: Dict[str, Path] = {}
    for name in names:
        path = tmp / f"config_{name}.yml"
        if name == "ours":
            shutil.copyfile(CONFIG, path)  # as is, comments and all (a snapshot for this run)
        elif name == "pyvi":
            cfg = copy.deepcopy(base)
            tok = _find(cfg["pipeline"], "VietnameseTokenizer")
            if tok is None:
                raise SystemExit("bench: bot/config.yml has no VietnameseTokenizer; cannot build `pyvi`")
            tok["segmenter"] = "pyvi"
            tok["add_syllables"] = True
            _dump_yaml(cfg, path)
        elif name == "stock":
            diet = _find(base["pipeline"], "DIETClassifier")
            fallback = _find(base["pipeline"], "FallbackClassifier")
            if diet is None:
                raise SystemExit("bench: bot/config.yml has no DIETClassifier; cannot build `stock`")
            stock_diet: Dict[str, Any] = {"name": "DIETClassifier"}
            for key in ("epochs", "constrain_similarities", "random_seed"):
                if key in diet:
                    stock_diet[key] = diet[key]
            pipeline: List[Dict[str, Any]] = [
                {"name": "WhitespaceTokenizer"},
                {"name": "CountVectorsFeaturizer"},
                stock_diet,
            ]
            if fallback is not None:
                fb = {"name": "FallbackClassifier"}
                for key in ("threshold", "ambiguity_threshold"):
                    if key in fallback:
                        fb[key] = fallback[key]
                pipeline.append(fb)
            cfg = {k: v for k, v in base.items() if k not in ("pipeline", "policies")}
            cfg["pipeline"] = pipeline
            cfg["policies"] = copy.deepcopy(base.get("policies"))
            _dump_yaml(cfg, path)
        else:
            raise SystemExit(f"bench: unknown config {name!r} (known: {', '.join(ALL_CONFIGS)})")
        out[name] = path
    return out


# --- 1. cross-validation ---------------------------------------------------------------------
def _num(value: Any) -> Optional[float]:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None  # NaN → None


def parse_intent_report(path: Path) -> Dict[str, Any]:
    report = json.loads(path.read_text("utf-8"))
    if not isinstance(report, dict):
        raise ValueError("intent_report.json is not an object")
    accuracy = _num(report.get("accuracy"))
    if accuracy is None:  # sklearn gives "micro avg" instead when predictions hold extra labels
        micro = report.get("micro avg") or {}
        accuracy = _num(micro.get("recall")) if isinstance(micro, dict) else None
    macro = report.get("macro avg") or {}
    weighted = report.get("weighted avg") or {}
    per_intent = {k: v for k, v in report.items()
                  if isinstance(v, dict) and "f1-score" in v and k not in ("macro avg", "weighted avg", "micro avg")}
    worst = sorted(((k, _num(v.get("f1-score"))) for k, v in per_intent.items()),
                   key=lambda kv: (kv[1] if kv[1] is not None else -1.0))[:8]
    return {
        "accuracy": accuracy,
        "macro_f1": _num(macro.get("f1-score")),
        "weighted_f1": _num(weighted.get("f1-score")),
        "support": int(_num(macro.get("support")) or 0) or None,
        "intents": len(per_intent),
        "worst_intents": [{"intent": k, "f1": v} for k, v in worst],
    }


def classifier_only(cfg: Path, tmp: Path, name: str) -> Path:
    """Cross-validation compares classifiers: the RiskAnnotator, which re-routes urgent messages
    to the emergency dialogue, is left out so every pipeline is scored on the intent its
    classifier predicted (the annotator is measured by the classify bar instead)."""
    data = _load_yaml(cfg)
    data["pipeline"] = [c for c in data["pipeline"] if not str(c.get("name", "")).endswith("RiskAnnotator")]
    path = tmp / f"config_{name}_cv.yml"
    _dump_yaml(data, path)
    return path


def run_cv(name: str, cfg: Path, folds: int, tmp: Path, timeout: float) -> Dict[str, Any]:
    cfg = classifier_only(cfg, tmp, name)
    out = tmp / f"cv_{name}"
    log = tmp / f"cv_{name}.log"
    cmd = [sys.executable, "-m", "rasa", "test", "nlu", "--nlu", str(NLU_DATA), "--config", str(cfg),
           "--cross-validation", "--folds", str(folds), "--out", str(out), "--no-plot"]
    r = run_cmd(cmd, log, child_env(tmp / f"cache_cv_{name}"), timeout)
    res: Dict[str, Any] = {"folds": folds, "seconds": r["seconds"]}
    report = out / "intent_report.json"
    if r["timed_out"]:
        res["error"] = f"cross-validation timed out after {timeout:.0f} s"
    elif r["rc"] != 0 or not report.exists():
        res["error"] = f"rasa test nlu failed (rc={r['rc']}, intent_report.json {'found' if report.exists() else 'missing'})"
    else:
        try:
            res.update(parse_intent_report(report))
        except (ValueError, OSError) as exc:
            res["error"] = f"could not read intent_report.json: {exc}"
    if "error" in res:
        res["log_tail"] = log_tail(log)
    return res


# --- 2. training -----------------------------------------------------------------------------
def run_train(name: str, cfg: Path, tmp: Path, timeout: float) -> Dict[str, Any]:
    out = tmp / "models"
    out.mkdir(exist_ok=True)
    log = tmp / f"train_{name}.log"
    model = out / f"bench_{name}.tar.gz"
    cmd = [sys.executable, "-m", "rasa", "train", "--config", str(cfg), "--domain", str(DOMAIN),
           "--data", str(NLU_DATA), str(DIALOGUE_DATA), "--out", str(out),
           "--fixed-model-name", f"bench_{name}", "--force"]
    r = run_cmd(cmd, log, child_env(tmp / f"cache_train_{name}"), timeout)
    res: Dict[str, Any] = {"seconds": r["seconds"]}
    if r["timed_out"]:
        res["error"] = f"rasa train timed out after {timeout:.0f} s"
    elif r["rc"] != 0 or not model.exists():
        hint = ""
        if not (DOMAIN / "responses.yml").exists():
            hint = " (bot/domain/responses.yml does not exist yet: the rules' utter_* actions have no responses)"
        res["error"] = f"rasa train failed (rc={r['rc']}, model {'found' if model.exists() else 'missing'}){hint}"
    else:
        res["model"] = str(model)
        res["model_mb"] = round(model.stat().st_size / 2**20, 2)
    if "error" in res:
        res["log_tail"] = log_tail(log)
    return res


# --- 3. serving ------------------------------------------------------------------------------
def _proc_status(pid: int) -> Dict[str, int]:
    vals: Dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    vals[key] = int(rest.split()[0])  # kB
    except (OSError, ValueError, IndexError):
        pass
    return vals


def _descendants(pid: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def memory_mb(pid: int) -> Dict[str, Any]:
    pids = [pid] + _descendants(pid)
    rss = hwm = 0
    for p in pids:
        s = _proc_status(p)
        rss += s.get("VmRSS", 0)
        hwm += s.get("VmHWM", 0)
    return {"rss_mb": round(rss / 1024, 1), "peak_mb": round(hwm / 1024, 1), "processes": len(pids)}


def percentile(sorted_vals: List[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_vals:
        return float("nan")
    pos = (len(sorted_vals) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def run_serve(name: str, model: Path, tmp: Path, n_messages: int) -> Dict[str, Any]:
    import requests

    if not model.exists():
        return {"error": f"model {model} is missing"}
    port = free_port()
    token = secrets.token_urlsafe(24)
    base = f"http://127.0.0.1:{port}"
    log = tmp / f"serve_{name}.log"
    cmd = [sys.executable, "-m", "rasa", "run", "-i", "127.0.0.1", "-p", str(port), "-m", str(model),
           "--enable-api", f"--auth-token={token}"]
    res: Dict[str, Any] = {"port": port}
    session = requests.Session()
    session.trust_env = False  # never route loopback through an HTTP(S)_PROXY from the environment
    start = time.perf_counter()
    proc = _spawn(cmd, log, child_env(tmp / f"cache_serve_{name}"))
    try:
        deadline = start + STARTUP_TIMEOUT
        ready = False
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                res["error"] = f"rasa run exited during startup (rc={proc.returncode})"
                break
            try:
                if session.get(base + "/", timeout=2).status_code == 200:
                    ready = True
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        if not ready:
            res.setdefault("error", f"rasa run did not answer GET / within {STARTUP_TIMEOUT:.0f} s")
            res["log_tail"] = log_tail(log)
            return res
        res["startup_s"] = round(time.perf_counter() - start, 2)
        try:
            st = session.get(base + "/status", params={"token": token}, timeout=REQUEST_TIMEOUT)
            res["status_ok"] = st.status_code == 200 and bool((st.json() or {}).get("model_file"))
        except (requests.RequestException, ValueError):
            res["status_ok"] = False
        res["memory_after_start"] = memory_mb(proc.pid)

        url = base + "/model/parse"
        params = {"token": token}
        latencies: List[float] = []
        failures = 0
        fallbacks = 0
        texts = MESSAGES
        for i in range(WARMUP_REQUESTS + n_messages):
            text = texts[i % len(texts)]
            t0 = time.perf_counter()
            try:
                r = session.post(url, params=params, json={"text": text}, timeout=REQUEST_TIMEOUT)
                ok = r.status_code == 200
                body = r.json() if ok else None
            except (requests.RequestException, ValueError):
                ok, body = False, None
            dt = (time.perf_counter() - t0) * 1000.0
            if i < WARMUP_REQUESTS:
                continue
            if not ok or not isinstance(body, dict):
                failures += 1
                if proc.poll() is not None:
                    res["error"] = f"rasa run died during the parse test (rc={proc.returncode})"
                    res["log_tail"] = log_tail(log)
                    break
                continue
            latencies.append(dt)
            intent = body.get("intent") or {}
            if isinstance(intent, dict) and intent.get("name") == "nlu_fallback":
                fallbacks += 1
        # long messages: letters of 500 to 2,000 characters, read whole and sentence by sentence
        long_lat: List[float] = []
        for i in range(max(60, n_messages // 5)):
            text = LONG_MESSAGES[i % len(LONG_MESSAGES)]
            t0 = time.perf_counter()
            try:
                ok = session.post(url, params=params, json={"text": text}, timeout=REQUEST_TIMEOUT).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                long_lat.append((time.perf_counter() - t0) * 1000.0)
        if long_lat:
            long_lat.sort()
            res.update({"long_p50_ms": round(percentile(long_lat, 0.50), 2), "long_p95_ms": round(percentile(long_lat, 0.95), 2),
                        "long_chars_max": max(len(t) for t in LONG_MESSAGES)})
        lat = sorted(latencies)
        res.update({
            "requests": n_messages, "warmup": WARMUP_REQUESTS, "ok": len(lat), "failures": failures,
            "distinct_texts": len(set(texts)),
            "fallback_rate": round(fallbacks / len(lat), 3) if lat else None,
        })
        if lat:
            res.update({
                "p50_ms": round(percentile(lat, 0.50), 2),
                "p95_ms": round(percentile(lat, 0.95), 2),
                "mean_ms": round(statistics.fmean(lat), 2),
                "max_ms": round(lat[-1], 2),
            })
        elif "error" not in res:
            res["error"] = "every /model/parse request failed"
            res["log_tail"] = log_tail(log)
        if proc.poll() is None:
            res.update(memory_mb(proc.pid))
        return res
    finally:
        session.close()
        res["stop"] = _kill_group(proc)


# --- report ----------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ratio(a: Any, b: Any) -> Optional[float]:
    a, b = _num(a), _num(b)
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def table(results: Dict[str, Dict[str, Any]]) -> str:
    rows = ["| config | CV accuracy | macro F1 | train s | startup s | parse p50 ms | p95 ms | long p95 ms (≤2,000 chars) "
            "| RSS MB | peak MB |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cv, tr, sv = r.get("cv", {}), r.get("train", {}), r.get("serve", {})
        rows.append("| " + " | ".join([
            name, _fmt(cv.get("accuracy"), 3), _fmt(cv.get("macro_f1"), 3),
            _fmt(tr.get("seconds") if "error" not in tr else None), _fmt(sv.get("startup_s")),
            _fmt(sv.get("p50_ms")), _fmt(sv.get("p95_ms")), _fmt(sv.get("long_p95_ms")), _fmt(sv.get("rss_mb"), 0),
            _fmt(sv.get("peak_mb"), 0),
        ]) + " |")
    return "\n".join(rows)


def ratios(results: Dict[str, Dict[str, Any]]) -> Optional[Dict[str, Optional[float]]]:
    if "ours" not in results or "stock" not in results:
        return None
    o, s = results["ours"], results["stock"]
    return {
        "accuracy": _ratio(o.get("cv", {}).get("accuracy"), s.get("cv", {}).get("accuracy")),
        "p95_ms": _ratio(o.get("serve", {}).get("p95_ms"), s.get("serve", {}).get("p95_ms")),
        "rss_mb": _ratio(o.get("serve", {}).get("rss_mb"), s.get("serve", {}).get("rss_mb")),
    }


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=20)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def preflight(configs: List[str], stages: List[str]) -> None:
    problems = []
    if importlib.util.find_spec("rasa") is None:
        problems.append(f"rasa is not importable by {sys.executable}; run with .venv/bin/python (make setup)")
    if importlib.util.find_spec("requests") is None and "serve" in stages:
        problems.append("the `requests` package is missing")
    if importlib.util.find_spec("yaml") is None:
        problems.append("the `yaml` (PyYAML) package is missing")
    if not CONFIG.is_file():
        problems.append(f"missing pipeline config {CONFIG}")
    if not NLU_DATA.is_dir() or not any(NLU_DATA.rglob("*.yml")):
        problems.append(f"no NLU training data (*.yml) under {NLU_DATA}")
    if "train" in stages or "serve" in stages:
        if not DOMAIN.exists():
            problems.append(f"missing domain {DOMAIN}")
        if not DIALOGUE_DATA.is_dir():
            problems.append(f"missing dialogue data {DIALOGUE_DATA}")
    if "pyvi" in configs and importlib.util.find_spec("pyvi") is None:
        problems.append("config `pyvi` needs the pyvi package")
    if problems:
        raise SystemExit("bench: cannot run:\n  - " + "\n  - ".join(problems))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, help="cross-validation folds (default 3; 2 with --quick)")
    ap.add_argument("--messages", type=int, help="timed /model/parse requests per config (default 500; 100 with --quick)")
    ap.add_argument("--configs", default=",".join(("ours", "stock", "pyvi")),
                    help="comma-separated subset of ours,stock,pyvi (default: all three)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of cv,train,serve")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "nlu.json"), help="JSON results file")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 folds and 100 messages")
    ap.add_argument("--cv-timeout", type=float, default=10800.0, help="seconds per cross-validation (default 10800)")
    ap.add_argument("--train-timeout", type=float, default=7200.0, help="seconds per rasa train (default 7200)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs, reports, models)")
    args = ap.parse_args(argv)

    folds = args.folds if args.folds is not None else (2 if args.quick else 3)
    n_messages = args.messages if args.messages is not None else (100 if args.quick else 500)
    if folds < 2:
        ap.error("--folds must be at least 2")
    if n_messages < 1:
        ap.error("--messages must be at least 1")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [c for c in configs if c not in ALL_CONFIGS] + [s for s in stages if s not in STAGES]
    if bad or not configs or not stages:
        ap.error(f"unknown or empty --configs/--stages: {', '.join(bad) or '(empty)'}")
    if "serve" in stages and "train" not in stages:
        ap.error("the serve stage needs the train stage (it serves the model trained in this run)")
    configs = list(dict.fromkeys(configs))
    preflight(configs, stages)

    atexit.register(_kill_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)

    out_path = Path(args.out)
    if not out_path.is_absolute():
        out_path = Path.cwd() / out_path
    tmp = Path(tempfile.mkdtemp(prefix="bench-nlu-"))
    results: Dict[str, Dict[str, Any]] = {}
    failed = False
    try:
        cfg_paths = build_configs(configs, tmp)
        for name in configs:
            r: Dict[str, Any] = {"config_sha256": _sha(cfg_paths[name])}
            results[name] = r
            if "cv" in stages:
                print(f"[{name}] cross-validation, {folds} folds ...", flush=True)
                r["cv"] = run_cv(name, cfg_paths[name], folds, tmp, args.cv_timeout)
                _report_step(name, "cv", r["cv"], f"acc {_fmt(r['cv'].get('accuracy'), 3)}, {r['cv']['seconds']} s")
            if "train" in stages:
                print(f"[{name}] rasa train ...", flush=True)
                r["train"] = run_train(name, cfg_paths[name], tmp, args.train_timeout)
                _report_step(name, "train", r["train"], f"{r['train']['seconds']} s")
            if "serve" in stages:
                if "error" in r.get("train", {}):
                    r["serve"] = {"error": "skipped: no model (training failed)"}
                else:
                    print(f"[{name}] rasa run + {n_messages} parses ...", flush=True)
                    r["serve"] = run_serve(name, Path(r["train"]["model"]), tmp, n_messages)
                    _report_step(name, "serve", r["serve"],
                                 f"startup {r['serve'].get('startup_s')} s, p95 {r['serve'].get('p95_ms')} ms")
            if "train" in r:
                r["train"].pop("model", None)  # a temp path, meaningless after the run
            failed |= any("error" in r.get(s, {}) for s in STAGES)
    finally:
        _kill_all()
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    import rasa  # noqa: E402  (version only; preflight checked it)

    doc = {
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "bench/nlu.py"] + (argv if argv is not None else sys.argv[1:])),
        "quick": args.quick, "folds": folds, "messages": n_messages, "warmup": WARMUP_REQUESTS,
        "stages": stages,
        "environment": {
            "rasa": getattr(rasa, "__version__", None), "python": platform.python_version(),
            "platform": platform.platform(), "cpus": os.cpu_count(), "git": _git_commit(),
            "bot_config_sha256": _sha(CONFIG),
        },
        "results": results,
        "ratios_ours_over_stock": ratios(results),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", "utf-8")

    print()
    print(f"NLU benchmark: {folds}-fold CV, {n_messages} parses after {WARMUP_REQUESTS} warm-up, "
          f"{os.cpu_count()} CPUs, Rasa {doc['environment']['rasa']}")
    print()
    print(table(results))
    rat = doc["ratios_ours_over_stock"]
    if rat:
        print()
        print(f"ours/stock: accuracy ×{_fmt(rat['accuracy'], 3)}, p95 ×{_fmt(rat['p95_ms'], 2)}, "
              f"RSS ×{_fmt(rat['rss_mb'], 2)}")
    print()
    print(f"results: {out_path}")
    return 1 if failed else 0


def _report_step(name: str, stage: str, res: Dict[str, Any], ok_text: str) -> None:
    if "error" in res:
        print(f"[{name}] {stage} FAILED: {res['error']}", flush=True)
        if res.get("log_tail"):
            print(res["log_tail"], flush=True)
    else:
        print(f"[{name}] {stage} done: {ok_text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
