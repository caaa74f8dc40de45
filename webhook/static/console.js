/* Counsellor console: live queue and case view. No inline script (strict CSP); strings come
   translated from the server in #i18n; every POST carries the CSRF token. */
(function () {
  "use strict";
  var T = JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var me = (document.getElementById("me") || {dataset: {}}).dataset;

  function t(key) { return T[key] || key; }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmtTime(ts) {
    var d = new Date(ts * 1000);
    return d.toLocaleString(document.documentElement.lang === "vi" ? "vi-VN" : "en-GB",
      {hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit"});
  }
  function fmtWait(s) {
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " " + t("min");
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " " + t("min");
  }
  function stamp(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("time[data-ts]"), function (n) {
      n.textContent = fmtTime(parseFloat(n.dataset.ts));
    });
  }
  function banner(text, kind) {
    var b = $("#banner");
    if (!b) return;
    b.textContent = text;
    b.className = "banner " + (kind || "");
    b.hidden = !text;
  }
  function toLogin() { window.location.href = "/console/login?next=" + encodeURIComponent(location.pathname); }

  function api(method, path, body) {
    var opts = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = csrf;
      opts.body = JSON.stringify(body);
    } else if (method === "POST") {
      opts.headers["X-CSRF-Token"] = csrf;
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { toLogin(); throw new Error("login"); }
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { var e = new Error(data.error || r.statusText); e.status = r.status; throw e; }
        return data;
      });
    });
  }

  /* --- sound and notifications for imminent cases -------------------------------------- */
  var audio = null;
  var soundOn = sessionStorage.getItem("hl_sound") === "1";
  function beep() {
    if (!soundOn) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35, 0.7].forEach(function (at) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = 880; o.connect(g); g.connect(audio.destination);
        g.gain.setValueAtTime(0.25, audio.currentTime + at);
        g.gain.setValueAtTime(0, audio.currentTime + at + 0.2);
        o.start(audio.currentTime + at); o.stop(audio.currentTime + at + 0.25);
      });
    } catch (e) { /* no audio device */ }
  }
  function notifyUrgent(caseId) {
    beep();
    document.title = "(!) " + document.title.replace(/^\(!\) /, "");
    if (window.Notification && Notification.permission === "granted") {
      try { new Notification(t("Imminent danger: a case is waiting"), {body: "#" + caseId, tag: "case-" + caseId}); } catch (e) {}
    }
  }
  function setupSound() {
    var b = $("#sound-toggle");
    if (!b) return;
    function paint() { b.setAttribute("aria-pressed", soundOn ? "true" : "false"); b.textContent = soundOn ? t("Sound on") : t("Turn on sound for imminent cases"); }
    paint();
    b.addEventListener("click", function () {
      soundOn = !soundOn;
      sessionStorage.setItem("hl_sound", soundOn ? "1" : "0");
      if (soundOn) { beep(); if (window.Notification && Notification.permission === "default") Notification.requestPermission(); }
      paint();
    });
  }

  /* --- the live feed --------------------------------------------------------------------- */
  function live(after, onEvent) {
    var status = $("#live");
    var src = new EventSource("/console/events?after=" + (after || 0));
    src.addEventListener("open", function () { if (status) { status.textContent = t("live"); status.className = "live on"; } });
    src.addEventListener("error", function () { if (status) { status.textContent = t("reconnecting…"); status.className = "live off"; } });
    src.addEventListener("logout", function () { src.close(); toLogin(); });
    src.addEventListener("case", function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      window.__lastEvent = ev;
      onEvent(ev);
    });
    return src;
  }
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  /* --- queue page ---------------------------------------------------------------------- */
  function caseRow(c, withClaim) {
    var tr = el("tr", "case-row risk-row-" + c.risk + (c.overdue ? " overdue" : ""));
    tr.dataset.caseId = c.id;
    var risk = el("td"); risk.appendChild(el("span", "risk risk-" + c.risk, c.risk_label));
    if (c.requested) risk.appendChild(el("span", "tag", t("asked for a counsellor")));
    tr.appendChild(risk);
    tr.appendChild(el("td", "wait", fmtWait(c.waiting_s)));
    tr.appendChild(el("td", null, c.topic_label));
    tr.appendChild(el("td", null, c.channel));
    tr.appendChild(el("td", null, c.locality || "—"));
    var link = el("a", null, "#" + c.id); link.href = "/console/cases/" + c.id;
    var tdl = el("td"); tdl.appendChild(link);
    if (c.claimed_by) tdl.appendChild(el("span", "muted small", " · " + c.claimed_by));
    tr.appendChild(tdl);
    var act = el("td");
    if (withClaim) {
      var b = el("button", "primary claim-btn", t("Take"));
      b.dataset.caseId = c.id;
      act.appendChild(b);
    }
    tr.appendChild(act);
    return tr;
  }
  function renderQueue(data) {
    function fill(id, items, withClaim) {
      var table = $("#" + id);
      if (!table) return;
      var body = table.tBodies[0];
      body.textContent = "";
      items.forEach(function (c) { body.appendChild(caseRow(c, withClaim)); });
      var count = $("#" + id + "-count");
      if (count) count.textContent = items.length;
    }
    fill("waiting", data.waiting, true);
    fill("mine", data.mine, false);
    fill("others", data.others || [], false);
    $("#waiting-empty").hidden = data.waiting.length > 0;
    var alerts = $("#alerts");
    alerts.textContent = "";
    alerts.hidden = !data.alerts.length;
    data.alerts.forEach(function (c) {
      alerts.appendChild(el("p", "alert", t("Waiting too long:") + " #" + c.id + " (" + c.risk_label + ", " + fmtWait(c.waiting_s) + ")"));
    });
    var urgent = data.waiting.filter(function (c) { return c.risk === "imminent"; }).length;
    document.title = (urgent ? "(!) " : "") + document.title.replace(/^\(!\) /, "");
  }
  function claimCase(id) {
    return api("POST", "/console/api/cases/" + id + "/claim").then(function (r) {
      window.location.href = r.url;
    }).catch(function (e) { if (e.message !== "login") banner(e.message, "warn"); refreshQueue(); });
  }
  var refreshQueue = function () {};
  function queuePage() {
    var data = JSON.parse($("#queue-data").textContent);
    renderQueue(data);
    setupSound();
    refreshQueue = debounce(function () {
      api("GET", "/console/api/queue").then(renderQueue).catch(function () {});
    }, 100);
    document.addEventListener("click", function (e) {
      var b = e.target.closest(".claim-btn");
      if (b) { b.disabled = true; claimCase(b.dataset.caseId); }
    });
    $("#take-next").addEventListener("click", function () {
      api("POST", "/console/api/next").then(function (r) { window.location.href = r.url; })
        .catch(function (e) { if (e.message !== "login") banner(e.message, "info"); });
    });
    live(data.feed_from, function (ev) {
      if ((ev.action === "opened" || ev.action === "raised") && /risk=imminent/.test(ev.detail || "")) notifyUrgent(ev.case_id);
      if (ev.action === "alert") { beep(); }
      refreshQueue();
    });
    setInterval(refreshQueue, 30000);   // waiting times and anything a dropped stream missed
  }

  /* --- case page ----------------------------------------------------------------------- */
  function casePage() {
    var root = $("#case");
    var id = root.dataset.caseId;
    var base = "/console/api/cases/" + id;
    var WHO = {person: t("Person"), bot: t("Bot"), safety: t("Bot (safety)"), counsellor: t("Counsellor"),
               followup: t("Follow-up"), bulk: t("Campaign")};

    function renderTranscript(d) {
      var ol = $("#transcript");
      var atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
      ol.textContent = "";
      d.messages.forEach(function (m) {
        var li = el("li", "msg msg-" + m.who);
        var head = el("div", "msg-head small muted", (WHO[m.who] || m.who) + " · " + fmtTime(m.at));
        if (m.risk === "high" || m.risk === "imminent") head.appendChild(el("span", "risk risk-" + m.risk, m.risk));
        li.appendChild(head);
        li.appendChild(el("div", "msg-text", m.text));
        if (m.state) {
          var st = el("div", "msg-state small state-" + m.state, m.state_label);
          st.dataset.state = m.state;
          li.appendChild(st);
        }
        ol.appendChild(li);
      });
      if (atBottom) ol.scrollTop = ol.scrollHeight;
      var notes = $("#notes");
      notes.textContent = "";
      d.notes.forEach(function (n) {
        var li = el("li", "note");
        li.appendChild(el("div", "small muted", n.author + " · " + fmtTime(n.at)));
        li.appendChild(el("div", "note-text", n.text));
        notes.appendChild(li);
      });
      var tl = $("#timeline");
      tl.textContent = "";
      d.timeline.forEach(function (e) {
        tl.appendChild(el("li", null, fmtTime(e.at) + " · " + e.actor + " · " + (T["action:" + e.action] || e.action) + (e.detail ? " (" + e.detail + ")" : "")));
      });
      var cb = $("#claim");
      if (cb) cb.hidden = d.case.status !== "open";
      var may = d.case.may_act;
      $("#reply-form").hidden = !may;
      $("#case-actions").hidden = !may;
      var st = $("#case-status");
      st.textContent = (T["status:" + d.case.status] || d.case.status) + (d.case.claimed_by ? " · " + d.case.claimed_by : "");
      root.dataset.status = d.case.status;
    }
    var load = debounce(function () {
      api("GET", base + "/transcript").then(renderTranscript).catch(function () {});
    }, 80);
    load();
    live(root.dataset.feedFrom || 0, function (ev) { if (String(ev.case_id) === String(id)) load(); });
    setInterval(load, 4000);   // delivery status changes come from the providers, not the feed

    var claim = $("#claim");
    if (claim) claim.addEventListener("click", function () { claim.disabled = true; claimCase(id).then(function () {}); });
    $("#canned").addEventListener("change", function (e) {
      var opt = e.target.selectedOptions[0];
      if (opt && opt.dataset.body) {
        var ta = $("#reply-text");
        ta.value = ta.value ? ta.value + "\n" + opt.dataset.body : opt.dataset.body;
        ta.focus();
      }
      e.target.value = "";
    });
    $("#reply-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var ta = $("#reply-text"), text = ta.value.trim();
      if (!text) return;
      $("#reply-send").disabled = true;
      $("#reply-status").textContent = t("sending…");
      api("POST", base + "/reply", {text: text}).then(function (r) {
        ta.value = "";
        $("#reply-status").textContent = r.state_label;
        load();
      }).catch(function (err) { $("#reply-status").textContent = err.message; })
        .then(function () { $("#reply-send").disabled = false; });
    });
    $("#note-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var ta = $("#note-text");
      if (!ta.value.trim()) return;
      api("POST", base + "/notes", {text: ta.value}).then(function () { ta.value = ""; load(); })
        .catch(function (err) { banner(err.message, "warn"); });
    });
    if ($("#transfer-form")) $("#transfer-form").addEventListener("submit", function (e) {
      e.preventDefault();
      api("POST", base + "/transfer", {to: $("#transfer-to").value, note: $("#transfer-note").value})
        .then(function () { window.location.href = "/console/"; })
        .catch(function (err) { banner(err.message, "warn"); });
    });
    $("#release").addEventListener("click", function () {
      api("POST", base + "/release").then(function () { window.location.href = "/console/"; })
        .catch(function (err) { banner(err.message, "warn"); });
    });
    $("#resolve-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var refs = Array.prototype.map.call(document.querySelectorAll('input[name="referral"]:checked'), function (i) { return i.value; });
      var help = (document.querySelector('input[name="help"]:checked') || {}).value || "unknown";
      api("POST", base + "/resolve", {
        outcome: $("#resolve-outcome").value, referrals: refs, help_received: help,
        gbv_type: $("#resolve-gbv-type").value,
        stats_consent: (document.querySelector('input[name="stats-consent"]:checked') || {}).value || "not_asked",
        followup_consent: $("#followup-consent").checked, followup_days: $("#followup-days").value,
        followup_hours: $("#followup-hours").value
      }).then(function (r) { window.location.href = r.url; })
        .catch(function (err) { banner(err.message, "warn"); });
    });
    var reveal = $("#reveal");
    if (reveal) reveal.addEventListener("click", function () {
      api("POST", base + "/reveal").then(function (r) { $("#contact").textContent = r.address || "—"; reveal.hidden = true; })
        .catch(function (err) { banner(err.message, "warn"); });
    });
  }

  // Campaign page: the delivery report follows the send (counts only, never a recipient).
  function campaignPage() {
    var box = $("#campaign");
    if (["scheduled", "running"].indexOf(box.dataset.state) < 0) return;
    function poll() {
      fetch(box.dataset.reportUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (r) {
          if (!r) return;
          $("#report-planned").textContent = r.planned;
          $("#report-queued").textContent = r.queued;
          var body = $("#report tbody");
          body.textContent = "";
          Object.keys(r.by_state).sort().forEach(function (k) {
            var tr = el("tr"); tr.dataset.state = k;
            tr.appendChild(el("td", "", t(k))); tr.appendChild(el("td", "", String(r.by_state[k])));
            body.appendChild(tr);
          });
          if (r.state !== box.dataset.state && ["done", "cancelled", "paused"].indexOf(r.state) >= 0) {
            window.location.reload();
            return;
          }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 2000);
  }

  stamp();
  if ($("#queue-data")) queuePage();
  if ($("#case")) casePage();
  if ($("#campaign")) campaignPage();
})();
