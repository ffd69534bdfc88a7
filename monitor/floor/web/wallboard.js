// callmon floor wallboard: every call on the floor, ranked by heat, live.
//
// Same rules as the terminal dashboard (monitor/floor/client.py): apply the hub's snapshot / update /
// removed messages to a map of calls; rank by heat, then customer hostility, then duration; alert on
// supervisor requests not yet seen and on active call_supervisor nudges. Text from the hub (names,
// transcripts) is only ever set with textContent, never parsed as HTML.
"use strict";

(() => {
  const HEAT = [
    { word: "calm", mark: "·" },
    { word: "tense", mark: "▲" },
    { word: "heated", mark: "▲▲" },
    { word: "CRITICAL", mark: "▲▲▲" },
  ];
  const REDRAW_MS = 100;        // at most ten redraws a second, however busy the floor
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const POLICY_VIOLATION = 1008;
  const TOKEN_KEY = "callmon.viewerToken";
  const MAX_ALERTS = 4;
  const LAST_LINE_CHARS = 90;

  const calls = new Map();      // call_id -> CALL (docs/FLOOR.md)
  const seen = new Map();       // call_id -> supervisor requests already acknowledged here
  const alertSince = new Map(); // alert key -> wall-clock ms it began
  const rows = new Map();       // call_id -> <tr>

  let ws = null;
  let welcomed = false;
  let delay = BACKOFF_MIN_MS;
  let retryAt = 0;
  let retryTimer = null;
  let dirty = true;
  let link = { state: "connecting", detail: "" };

  const $ = (sel) => document.querySelector(sel);

  // --- the board's state --------------------------------------------------------------------

  function apply(msg) {
    if (msg.type === "snapshot") {
      calls.clear();
      for (const call of msg.calls || []) {
        if (call && typeof call.call_id === "string") calls.set(call.call_id, call);
      }
    } else if (msg.type === "update" && typeof msg.call_id === "string") {
      let call = calls.get(msg.call_id);
      if (!call) {
        call = { call_id: msg.call_id, transcript: [] };
        calls.set(msg.call_id, call);
      }
      Object.assign(call, msg.set || {});
      if (Array.isArray(msg.lines) && msg.lines.length) {
        call.transcript = (call.transcript || []).concat(msg.lines).slice(-20);
      }
    } else if (msg.type === "removed") {
      calls.delete(msg.call_id);
      seen.delete(msg.call_id);
    }
  }

  const num = (v) => (typeof v === "number" && isFinite(v) ? v : null);
  const heatOf = (c) => (Number.isInteger(c.heat) ? Math.max(0, Math.min(3, c.heat)) : 0);
  const hostilityOf = (c) => num((c.customer || {}).hostility) ?? 0;
  const durationOf = (c) => num(c.t) ?? 0;

  function rank() {
    return [...calls.values()].sort(
      (a, b) =>
        heatOf(b) - heatOf(a) ||
        hostilityOf(b) - hostilityOf(a) ||
        durationOf(b) - durationOf(a) ||
        String(a.call_id).localeCompare(String(b.call_id)),
    );
  }

  function alerts(ranked) {
    const out = [];
    for (const call of ranked) {
      const agent = call.agent_id || "?";
      const requests = Array.isArray(call.supervisor_requests) ? call.supervisor_requests : [];
      requests.slice(seen.get(call.call_id) || 0).forEach((r) => {
        out.push({ call, agent, kind: "supervisor_request", t: num(r.t) ?? 0, text: r.note || "",
                   label: "asked for a supervisor" });
      });
      for (const n of call.nudges || []) {
        if (n && n.kind === "call_supervisor") {
          out.push({ call, agent, kind: "call_supervisor", t: num(n.t) ?? 0, text: n.message || "",
                     label: "coach says: call the supervisor" });
        }
      }
    }
    for (const a of out) a.key = `${a.call.call_id}:${a.kind}:${a.t.toFixed(3)}`;
    return out;
  }

  // When an alert began: the call's start on the hub's clock plus its call time, never later than now.
  function since(alert, now) {
    if (!alertSince.has(alert.key)) {
      const started = num(alert.call.started_at);
      alertSince.set(alert.key, started === null ? now : Math.min(now, (started + alert.t) * 1000));
    }
    return alertSince.get(alert.key);
  }

  // --- formatting ---------------------------------------------------------------------------

  function mmss(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (x) => String(x).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
  }

  function ago(ms) {
    const s = Math.max(0, ms / 1000);
    if (s < 5) return "just now";
    if (s < 90) return `${Math.floor(s)} s ago`;
    const m = Math.floor(s / 60);
    return m < 60 ? `${m} min ago` : `${Math.floor(m / 60)} h ${m % 60} min ago`;
  }

  const fmt = (v, f) => (num(v) === null ? "–" : f(v));

  function topNudge(call) {
    const order = { critical: 0, warn: 1, info: 2 };
    const nudges = (call.nudges || []).filter((n) => n && typeof n === "object");
    if (!nudges.length) return null;
    nudges.sort((a, b) => (order[a.severity] ?? 3) - (order[b.severity] ?? 3) || (num(b.t) ?? 0) - (num(a.t) ?? 0));
    return { nudge: nudges[0], more: nudges.length - 1 };
  }

  // --- drawing ------------------------------------------------------------------------------

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function newRow(callId) {
    const tr = document.createElement("tr");
    tr.dataset.callId = callId;
    for (const name of ["agent", "time", "heat", "loud", "pace", "hostility", "nudge", "last"]) {
      const td = document.createElement("td");
      td.className = `col-${name}`;
      tr.appendChild(td);
    }
    const heat = document.createElement("span");
    heat.className = "heat";
    tr.children[2].appendChild(heat);
    return tr;
  }

  function drawRow(tr, call, alerting) {
    const level = call.heat === null || call.heat === undefined ? null : heatOf(call);
    const status = call.status || "live";
    tr.dataset.heat = level === null ? "none" : String(level);
    tr.dataset.status = status;
    tr.dataset.alert = alerting ? "true" : "false";
    tr.dataset.agent = call.agent_id || "";
    const [agent, time, heatTd, loud, pace, hostility, nudge, last] = tr.children;
    setText(agent, (alerting ? "⚑ " : "") + (call.agent_id || "?"));
    setText(time, mmss(durationOf(call)) + (status === "live" ? "" : ` ${status}`));
    setText(heatTd.firstChild, level === null ? "–" : `${HEAT[level].mark} ${HEAT[level].word}`);
    const c = call.customer || {};
    setText(loud, fmt(c.loudness_db, (v) => `${v >= 0 ? "+" : ""}${v.toFixed(1)} dB`));
    setText(pace, fmt(c.pace_wpm, (v) => `${Math.round(v)} wpm`));
    setText(hostility, fmt(c.hostility, (v) => v.toFixed(2)));
    const top = topNudge(call);
    // The mark repeats the colour's message for colour-blind people: ‼ critical, ! warn.
    const mark = top ? ({ critical: "‼ ", warn: "! " }[top.nudge.severity] || "") : "";
    setText(nudge, top ? mark + String(top.nudge.kind || "?").replace(/_/g, " ") + (top.more ? ` +${top.more}` : "") : "");
    nudge.dataset.severity = top ? String(top.nudge.severity || "") : "";
    let line = String(call.last_customer_line || "");
    if (line.length > LAST_LINE_CHARS) line = line.slice(0, LAST_LINE_CHARS - 1) + "…";
    setText(last, line);
  }

  // Alert elements are kept per alert and only their "how long ago" changes, so a click on one
  // is never lost to a redraw.
  const alertEls = new Map(); // alert key -> <div>

  function newAlert(a) {
    const div = document.createElement("div");
    div.className = "alert";
    div.dataset.callId = a.call.call_id;
    div.dataset.kind = a.kind;
    div.dataset.agent = a.agent;
    const icon = document.createElement("span");
    icon.className = "icon";
    icon.textContent = "⚠ ALERT";
    const who = document.createElement("strong");
    who.textContent = a.agent;
    const what = document.createElement("span");
    what.textContent = ` ${a.label}${a.text ? ": " + a.text.slice(0, 100) : ""}`;
    const when = document.createElement("span");
    when.className = "when";
    div.append(icon, " ", who, what, when);
    if (a.kind === "supervisor_request") {
      div.title = "click to acknowledge";
      div.addEventListener("click", () => {
        const call = calls.get(a.call.call_id);
        seen.set(a.call.call_id, call ? (call.supervisor_requests || []).length : 0);
        dirty = true;
      });
    }
    return div;
  }

  function drawAlerts(current, now) {
    const box = $("#alerts");
    const keys = new Set(current.map((a) => a.key));
    for (const key of [...alertSince.keys()]) if (!keys.has(key)) alertSince.delete(key);
    box.hidden = current.length === 0;
    const shown = current.slice(0, MAX_ALERTS);
    const shownKeys = new Set(shown.map((a) => a.key));
    for (const [key, el] of alertEls) {
      if (!shownKeys.has(key)) {
        el.remove();
        alertEls.delete(key);
      }
    }
    shown.forEach((a, i) => {
      let el = alertEls.get(a.key);
      if (!el) {
        el = newAlert(a);
        alertEls.set(a.key, el);
      }
      setText(el.querySelector(".when"), ` (${ago(now - since(a, now))})`);
      if (box.children[i] !== el) box.insertBefore(el, box.children[i] || null);
    });
    let more = box.querySelector(".more");
    if (current.length > MAX_ALERTS) {
      if (!more) {
        more = document.createElement("div");
        more.className = "more";
      }
      setText(more, `… and ${current.length - MAX_ALERTS} more`);
      box.appendChild(more);
    } else if (more) {
      more.remove();
    }
  }

  function drawLink() {
    const el = $("#link");
    el.dataset.state = link.state;
    document.body.dataset.link = link.state; // the board dims while what it shows may be out of date
    let text = link.state;
    if (link.state === "down") {
      const left = Math.max(0, Math.round((retryAt - Date.now()) / 1000));
      text = `hub down, retrying in ${left} s` + (link.detail ? ` (${link.detail})` : "");
    } else if (link.state === "refused") {
      text = "token refused";
    } else if (link.state === "login") {
      text = "no token yet";
    }
    setText(el, text);
  }

  function render() {
    dirty = false;
    const now = Date.now();
    const ranked = rank();
    const current = alerts(ranked);
    const alerting = new Set(current.map((a) => a.call.call_id));
    drawAlerts(current, now);
    const tbody = $("#board tbody");
    ranked.forEach((call, i) => {
      let tr = rows.get(call.call_id);
      if (!tr) {
        tr = newRow(call.call_id);
        rows.set(call.call_id, tr);
      }
      drawRow(tr, call, alerting.has(call.call_id));
      // Move only what is out of place, so rows keep their elements as they reorder.
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    for (const [id, tr] of rows) {
      if (!calls.has(id)) {
        tr.remove();
        rows.delete(id);
      }
    }
    $("#empty").hidden = ranked.length > 0 || link.state !== "connected";
    setText($("#count"), `${ranked.length} call${ranked.length === 1 ? "" : "s"}` +
      (current.length ? ` · ${current.length} alert${current.length === 1 ? "" : "s"}` : ""));
    drawLink();
  }

  // --- the link -----------------------------------------------------------------------------

  function setLink(state, detail = "") {
    link = { state, detail };
    dirty = true;
  }

  function connect(token) {
    clearTimeout(retryTimer);
    welcomed = false;
    setLink("connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(`${scheme}${location.host}/ws`);
    ws = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "hello", token }));
    socket.onmessage = (ev) => {
      if (socket !== ws) return; // an old link, replaced by a new token
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "welcome") {
        if (msg.role !== "viewer") {
          refuse(socket, "that is an agent's token; the wallboard needs a viewer token");
          return;
        }
        welcomed = true;
        delay = BACKOFF_MIN_MS;
        setLink("connected");
        return;
      }
      apply(msg);
      dirty = true;
    };
    socket.onclose = (ev) => {
      if (socket !== ws || link.state === "refused") return;
      if (ev.code === POLICY_VIOLATION && !welcomed) {
        refuse(null, ev.reason || "the hub refused the token");
        return;
      }
      const wait = delay * (0.8 + Math.random() * 0.4);
      delay = Math.min(BACKOFF_MAX_MS, delay * 2);
      retryAt = Date.now() + wait;
      setLink("down", ev.code === 1006 ? "no connection" : ev.reason || `closed ${ev.code}`);
      retryTimer = setTimeout(() => connect(token), wait);
    };
  }

  function refuse(socket, why) {
    setLink("refused", why);
    sessionStorage.removeItem(TOKEN_KEY);
    if (socket) socket.close();
    showLogin(`The hub refused this token: ${why}`);
  }

  function showLogin(error) {
    $("#login").hidden = false;
    setText($("#login-error"), error || "");
    $("#token").focus();
  }

  function start(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#login").hidden = true;
    connect(token);
  }

  function tokenFromFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const token = params.get("token");
    if (token) {
      // Keep it for reloads, but off the address bar of a screen people walk past.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return token;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("#token").value.trim();
      if (token) start(token);
    });
    setInterval(() => {
      if (dirty) render();
    }, REDRAW_MS);
    setInterval(() => { dirty = true; }, 1000); // "2 min ago" and "retrying in 3 s" stay true
    const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
    if (token) start(token);
    else {
      setLink("login");
      showLogin("");
    }
    render();
  });
})();
