/* Helpline web chat (ES2017, no dependencies).
 * Safety choices:
 * - Quick exit (button or Esc) stops polling, aborts requests, empties the page, clears
 *   sessionStorage and calls location.replace(), so Back does not come back to the chat.
 * - The only thing stored on the device is the session token, in sessionStorage ("hl_s"),
 *   so a reload in the same tab keeps the chat; messages are re-read from the server, never
 *   stored. Nothing goes to localStorage or cookies (API calls use credentials: "omit").
 * - The token travels in the X-Webchat-Session header and text in POST bodies, never in URLs.
 * - Message text is rendered with text nodes only (never innerHTML); phone numbers in replies
 *   become tel: links built node by node. No external fonts, scripts or requests.
 */
(function () {
  'use strict';
  const app = document.getElementById('chat');
  if (!app || !window.fetch) return;
  const $ = (id) => document.getElementById(id);
  const d = app.dataset, list = $('msgs'), form = $('send-form'), box = $('text');
  const counter = $('count'), statusEl = $('status'), greeting = $('greeting');
  const API = '/webchat/api/', KEY = 'hl_s', MAX = Number(box.getAttribute('maxlength')) || 2000;
  const PHONE = /(^|[^\d/.])(1800[ .]?1581|11[135])(?![\d/]|\.\d)/g;

  let token = null;
  try { token = sessionStorage.getItem(KEY); } catch (e) { /* storage disabled: session lives in memory */ }
  let pollMs = Number(d.pollMs) || 1500, lastId = 0, pollFails = 0, pollTimer = 0;
  let stopped = false, inflight = false, kicked = false, sending = false, creating = null;
  const seen = new Set(), outbox = [], ctrls = new Set();

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const store = (v) => { try { if (v) sessionStorage.setItem(KEY, v); else sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ } };
  const rid = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join('');
  const setStatus = (text) => { statusEl.textContent = text || ''; };

  // One HTTP call. Resolves {status, data}; rejects on network error, timeout or exit.
  async function req(method, path, body, tok) {
    if (stopped) throw new Error('stopped');
    const ac = window.AbortController ? new AbortController() : null;
    const timer = ac ? setTimeout(() => ac.abort(), 20000) : 0;
    if (ac) ctrls.add(ac);
    const headers = { Accept: 'application/json' };
    if (body) headers['Content-Type'] = 'application/json';
    if (tok) headers['X-Webchat-Session'] = tok;
    try {
      const r = await fetch(path, {
        method, headers, body: body ? JSON.stringify(body) : undefined,
        credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer', signal: ac ? ac.signal : undefined,
      });
      const data = await r.json().catch(() => null);
      return { status: r.status, data };
    } finally { clearTimeout(timer); if (ac) ctrls.delete(ac); }
  }

  async function createSession() {
    for (let wait = 1000; ; wait = Math.min(wait * 2, 30000)) {
      try {
        const r = await req('POST', API + 'session', {});
        if (r.status === 201 && r.data && typeof r.data.session === 'string' && r.data.session) return r.data;
      } catch (e) { if (stopped) throw e; }
      if (stopped) throw new Error('stopped');
      setStatus(d.offline);
      await sleep(wait);
    }
  }

  // A valid token. `dead` is a token the server refused (403): start a new conversation once.
  function session(dead) {
    if (dead && token === dead) { token = null; store(null); lastId = 0; seen.clear(); note(d.newChat); }
    if (token) return Promise.resolve(token);
    creating = creating || createSession().then((s) => {
      creating = null;
      if (stopped) throw new Error('stopped'); // never store a token after Quick exit
      token = s.session; store(token);
      if (Number(s.poll_ms) > 0) pollMs = Number(s.poll_ms);
      if (statusEl.textContent === d.offline) setStatus('');
      return token;
    }, (e) => { creating = null; throw e; });
    return creating;
  }

  // A call that needs the session; on 403 renews the session and tries once more.
  async function api(method, path, body) {
    let r = null;
    for (let i = 0; i < 2; i++) {
      const tok = await session();
      r = await req(method, typeof path === 'function' ? path() : path, body, tok);
      if (r.status !== 403 || i) return r;
      await session(tok);
    }
    return r;
  }

  // ---- rendering (text nodes only) ----
  function fill(el, text, links) {
    if (!links) { el.textContent = text; return; }
    let last = 0, m;
    PHONE.lastIndex = 0;
    while ((m = PHONE.exec(text))) {
      const start = m.index + m[1].length;
      el.appendChild(document.createTextNode(text.slice(last, start)));
      const a = el.appendChild(document.createElement('a'));
      a.href = 'tel:' + m[2].replace(/\D/g, '');
      a.textContent = m[2];
      last = start + m[2].length;
    }
    el.appendChild(document.createTextNode(text.slice(last)));
  }
  function bubble(dir, text) {
    const li = list.appendChild(document.createElement('li'));
    const who = li.appendChild(document.createElement('span')), body = li.appendChild(document.createElement('span'));
    li.className = 'msg ' + dir;
    li.hlText = text;
    who.className = 'vh';
    who.textContent = (dir === 'in' ? d.you : d.helpline) + ' ';
    body.className = 'text';
    fill(body, text, dir !== 'in');
    li.scrollIntoView({ block: 'end' });
    return li;
  }
  function mark(li, text) {
    let s = li.querySelector('.state');
    if (!text) { if (s) s.remove(); li.classList.remove('pending'); return; }
    if (!s) { s = document.createElement('span'); s.className = 'state'; li.appendChild(s); }
    s.textContent = text;
    li.classList.add('pending');
  }
  function note(text) {
    const li = list.appendChild(document.createElement('li'));
    li.className = 'note';
    li.textContent = text;
  }
  function show(m) {
    const id = m && m.id;
    if (typeof id !== 'number' || !Number.isFinite(id)) return;
    if (id > lastId) lastId = id;
    if (seen.has(id)) return;
    seen.add(id);
    const text = m.text == null ? '' : String(m.text);
    if (m.direction === 'in') {
      // Our own message: match the optimistic copy by client_id, else by the id from the 202 or the same text.
      const mine = Array.from(list.querySelectorAll('li.local:not(.seen)')).find((li) => (m.client_id
        ? li.dataset.cid === String(m.client_id) : li.dataset.sid === String(id) || li.hlText === text));
      if (mine) { mine.classList.add('seen'); mark(mine, ''); return; }
      bubble('in', text);
    } else {
      greeting.hidden = true;
      bubble('out', text);
    }
  }

  // ---- polling ----
  function schedule(ms) {
    if (stopped) return;
    clearTimeout(pollTimer);
    if (ms === undefined) {
      ms = pollMs * Math.pow(2, Math.min(pollFails, 5));
      if (document.hidden) ms = Math.max(ms, pollMs * 10);
      ms = Math.min(ms, 60000);
    }
    pollTimer = setTimeout(poll, ms);
  }
  function kick() { if (inflight) kicked = true; else schedule(0); }
  async function poll() {
    if (stopped || inflight) return;
    inflight = true;
    let ok = false;
    try {
      const r = await api('GET', () => API + 'messages?after=' + lastId);
      ok = r.status === 200 && r.data && Array.isArray(r.data.messages);
      if (ok) r.data.messages.forEach(show);
    } catch (e) { /* network error: back off */ }
    inflight = false;
    pollFails = ok ? 0 : pollFails + 1;
    if (ok && statusEl.textContent === d.offline) setStatus('');
    if (pollFails >= 3) setStatus(d.offline);
    schedule(kicked ? 0 : undefined);
    kicked = false;
  }

  // ---- sending: one message at a time, in order, retried with the same client_id ----
  async function deliver(li) {
    for (let wait = 1000; !stopped && !li.classList.contains('seen'); wait = Math.min(wait * 2, 30000)) {
      let r = null;
      try { r = await api('POST', API + 'messages', { text: li.hlText, client_id: li.dataset.cid }); } catch (e) { /* retry */ }
      if (stopped || li.classList.contains('seen')) return;
      if (r && r.status >= 200 && r.status < 300) {
        if (r.data && r.data.id != null) li.dataset.sid = r.data.id; // may not share the poll's id space
        mark(li, '');
        kick();
        return;
      }
      if (r && r.status >= 400 && r.status < 500 && [403, 408, 425, 429].indexOf(r.status) < 0) {
        // Refused (empty, too long, not text): give the text back to the box so nothing is lost.
        li.remove();
        box.value = box.value ? li.hlText + '\n' + box.value : li.hlText;
        count();
        setStatus(r.status === 415 ? d.onlyText : d.rejected);
        box.focus();
        return;
      }
      mark(li, d.retrying);
      await sleep(wait);
    }
  }
  async function pump() {
    if (sending) return;
    sending = true;
    while (outbox.length && !stopped) { await deliver(outbox[0]); outbox.shift(); }
    sending = false;
  }
  function count() {
    const left = MAX - box.value.length;
    counter.hidden = left > 200;
    counter.textContent = d.charsLeft.replace('{n}', String(Math.max(left, 0)));
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = box.value;
    if (!text.trim() || text.length > MAX) { setStatus(d.rejected); box.focus(); return; }
    setStatus('');
    const li = bubble('in', text);
    li.classList.add('local');
    li.dataset.cid = rid();
    mark(li, d.sending);
    outbox.push(li);
    box.value = '';
    count();
    box.focus(); // keep the keyboard open for the next message
    pump();
  });
  box.addEventListener('input', count);
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : $('send').click(); }
  });
  const onlyText = (dt, e) => {
    if (dt && dt.files && dt.files.length && !dt.getData('text')) { e.preventDefault(); setStatus(d.onlyText); }
  };
  box.addEventListener('paste', (e) => onlyText(e.clipboardData, e));
  box.addEventListener('drop', (e) => onlyText(e.dataTransfer, e));

  // ---- quick exit ----
  function exit(e) {
    if (e) e.preventDefault();
    const url = d.exitUrl || 'about:blank';
    stopped = true;
    token = null;
    clearTimeout(pollTimer);
    ctrls.forEach((c) => c.abort());
    outbox.length = 0;
    list.textContent = box.value = document.title = '';
    try { sessionStorage.clear(); } catch (x) { /* ignore */ }
    document.body.textContent = ''; // nothing left on screen while the next page loads
    window.location.replace(url);
  }
  $('quick-exit').addEventListener('click', exit);
  document.addEventListener('keydown', (e) => {
    if ((e.key === 'Escape' || e.key === 'Esc') && !e.isComposing) exit(e);
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) kick(); });

  form.hidden = false; // the form is useless without this script, so it starts hidden
  count();
  schedule(0);
}());
