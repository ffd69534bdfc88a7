// callmon floor wallboard: every call on the floor, ranked by heat, live.
//
// Same rules as the terminal dashboard (monitor/floor/client.py): apply the hub's snapshot / batch /
// update / removed messages to a map of calls; rank live calls above ended ones, alerts first, then
// heat, customer hostility and duration; alert on supervisor requests and call_supervisor nudges no
// lead has acknowledged (the ack is part of the call, shared by every lead). A click or Enter on a row
// opens the call: its live transcript, its nudges, Acknowledge and a whisper to the agent. Text from
// the hub (names, transcripts) is only ever set with textContent, never parsed as HTML.
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
  const KEEP_LINES = 500;       // transcript lines kept per call for the drill-in

  const calls = new Map();      // call_id -> CALL (docs/FLOOR.md)
  const alertSince = new Map(); // alert key -> wall-clock ms it began
  const rows = new Map();       // call_id -> <tr>

  let ws = null;
  let welcomed = false;
  let delay = BACKOFF_MIN_MS;
  let retryAt = 0;
  let retryTimer = null;
  let dirty = true;
  let link = { state: "connecting", detail: "" };
  let backplane = "";           // the hub's backplane status ("ok", "down: ..."), "" for a hub alone
  let pos = null;               // the last position the hub stamped: a reconnect resumes from it
  let open = null;              // the call_id shown in the drill-in, or null

  const $ = (sel) => document.querySelector(sel);

  // --- the board's state --------------------------------------------------------------------

  const lineKey = (l) => `${l.t}|${l.role}|${l.text}`;

  function apply(msg) {
    if (msg.type === "batch") {
      for (const inner of msg.messages || []) if (inner && inner.type !== "batch") apply(inner);
    } else if (msg.type === "status") {
      backplane = String(msg.backplane || "");
    } else if (msg.type === "snapshot") {
      // After a reconnect keep the transcript already seen of each call, adding only the lines missed.
      const old = new Map(calls);
      calls.clear();
      for (const call of msg.calls || []) {
        if (!call || typeof call.call_id !== "string") continue;
        const before = old.get(call.call_id);
        const lines = Array.isArray(call.transcript) ? call.transcript : [];
        if (before) {
          const have = new Set((before.transcript || []).map(lineKey));
          call.transcript = (before.transcript || []).concat(lines.filter((l) => !have.has(lineKey(l)))).slice(-KEEP_LINES);
        }
        calls.set(call.call_id, call);
      }
    } else if (msg.type === "update" && typeof msg.call_id === "string") {
      let call = calls.get(msg.call_id);
      if (!call) {
        call = { call_id: msg.call_id, transcript: [] };
        calls.set(msg.call_id, call);
      }
      Object.assign(call, msg.set || {});
      if (Array.isArray(msg.lines) && msg.lines.length) {
        call.transcript = (call.transcript || []).concat(msg.lines).slice(-KEEP_LINES);
      }
    } else if (msg.type === "removed") {
      calls.delete(msg.call_id);
    }
  }

  const num = (v) => (typeof v === "number" && isFinite(v) ? v : null);
  const heatOf = (c) => (Number.isInteger(c.heat) ? Math.max(0, Math.min(3, c.heat)) : 0);
  const hostilityOf = (c) => num((c.customer || {}).hostility) ?? 0;
  const durationOf = (c) => num(c.t) ?? 0;

  function ackOf(call) {
    const ack = call.ack && typeof call.ack === "object" ? call.ack : {};
    return { requests: Number.isInteger(ack.requests) ? ack.requests : 0,
             nudges: new Set(Array.isArray(ack.nudges) ? ack.nudges : []) };
  }

  function alerting(call) {
    const ack = ackOf(call);
    const requests = Array.isArray(call.supervisor_requests) ? call.supervisor_requests : [];
    return requests.length > ack.requests ||
      (call.nudges || []).some((n) => n && n.kind === "call_supervisor" && !ack.nudges.has(n.id));
  }

  // Live calls above ended ones; among them calls with an alert first, then heat, hostility, duration.
  function rank() {
    const ended = (c) => (c.status === "ended" ? 1 : 0);
    return [...calls.values()].sort(
      (a, b) =>
        ended(a) - ended(b) ||
        (alerting(a) ? 0 : 1) - (alerting(b) ? 0 : 1) ||
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
      const ack = ackOf(call);
      const requests = Array.isArray(call.supervisor_requests) ? call.supervisor_requests : [];
      requests.slice(ack.requests).forEach((r) => {
        out.push({ call, agent, kind: "supervisor_request", t: num(r.t) ?? 0, text: r.note || "",
                   label: "asked for a supervisor" });
      });
      for (const n of call.nudges || []) {
        if (n && n.kind === "call_supervisor" && !ack.nudges.has(n.id)) {
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
    tr.tabIndex = 0; // Enter opens it, like a click
    tr.addEventListener("click", () => openCall(callId));
    tr.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") openCall(callId);
    });
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
    div.title = "click to open the call";
    div.addEventListener("click", () => openCall(a.call.call_id));
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
    if (link.state === "connected" && backplane.startsWith("down")) {
      text = `connected; hub's backplane ${backplane}`;
    } else if (link.state === "down") {
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
    drawCall();
    setText($("#count"), `${ranked.length} call${ranked.length === 1 ? "" : "s"}` +
      (current.length ? ` · ${current.length} alert${current.length === 1 ? "" : "s"}` : ""));
    drawLink();
  }

  // --- one call up close ---------------------------------------------------------------------

  let shownLines = 0;

  function openCall(callId) {
    if (!calls.has(callId)) return;
    open = callId;
    shownLines = 0;
    $("#transcript").replaceChildren();
    setText($("#call-sent"), "");
    $("#call").hidden = false;
    dirty = true;
    render();
    $("#whisper-text").focus();
  }

  function closeCall() {
    const was = open;
    open = null;
    $("#call").hidden = true;
    const tr = rows.get(was);
    if (tr) tr.focus();
  }

  function drawCall() {
    if (open === null) return;
    const call = calls.get(open);
    if (!call) {
      setText($("#call-head"), "This call has left the board. Escape goes back.");
      return;
    }
    const level = call.heat === null || call.heat === undefined ? null : heatOf(call);
    setText($("#call-head"), `${call.agent_id || "?"} · ${call.call_id} · ${call.status || "live"} · ` +
      `${mmss(durationOf(call))} · ${level === null ? "–" : HEAT[level].word}`);
    const nudges = (call.nudges || []).filter((n) => n && typeof n === "object");
    setText($("#call-nudges"), nudges.length
      ? nudges.map((n) => `${String(n.severity || "").toUpperCase()} ${String(n.kind || "").replace(/_/g, " ")}: ${n.message || ""}`).join("\n")
      : "no active nudge");
    const ack = call.ack && typeof call.ack === "object" ? call.ack : null;
    setText($("#call-ack"), ack ? `acknowledged by ${ack.by}` : "");
    const box = $("#transcript");
    const lines = Array.isArray(call.transcript) ? call.transcript : [];
    if (lines.length < shownLines) {
      box.replaceChildren();
      shownLines = 0;
    }
    for (const line of lines.slice(shownLines)) {
      const p = document.createElement("p");
      p.className = `line role-${line.role === "customer" ? "customer" : "agent"}`;
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = mmss(num(line.t) ?? 0) + " ";
      const who = document.createElement("strong");
      who.textContent = `${String(line.role || "?").toUpperCase()} `;
      const what = document.createElement("span");
      what.textContent = String(line.text || "");
      p.append(when, who, what);
      box.appendChild(p);
    }
    if (lines.length > shownLines) box.scrollTop = box.scrollHeight;
    shownLines = lines.length;
  }

  function sendLead(message) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !welcomed) {
      setText($("#call-sent"), "not sent: the hub link is down");
      return false;
    }
    ws.send(JSON.stringify(message));
    return true;
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
    socket.onopen = () => socket.send(JSON.stringify(pos ? { type: "hello", token, since: pos } : { type: "hello", token }));
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
      if (msg.type === "error" && open !== null) setText($("#call-sent"), `the hub said: ${msg.message}`);
      if ((msg.type === "snapshot" || msg.type === "batch") && typeof msg.pos === "string") pos = msg.pos;
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
    $("#call-close").addEventListener("click", closeCall);
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && open !== null) closeCall();
    });
    $("#call-ack-button").addEventListener("click", () => {
      if (open !== null && sendLead({ type: "ack", call_id: open })) setText($("#call-sent"), "acknowledged: the agent sees “your lead is coming”");
    });
    $("#whisper").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("#whisper-text").value.trim();
      if (open !== null && text && sendLead({ type: "whisper", call_id: open, text })) {
        $("#whisper-text").value = "";
        setText($("#call-sent"), `whispered: ${text}`);
      }
    });
    const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
    if (token) start(token);
    else {
      setLink("login");
      showLogin("");
    }
    render();
  });
})();
