// The agent console: sign in, follow /console/stream, act through /console/cmd/<verb> (the MQTT command path).
"use strict";

const L = {
  zh: {
    title: "坐席工作台", logout: "退出", signin: "坐席签入", key: "密钥编号", secret: "密钥 / 令牌", agent: "坐席",
    hotline: "热线", role: "角色", role_agent: "坐席", role_supervisor: "班长", signin_button: "签入",
    incoming: "来电预告 (交接)", current_call: "当前通话", no_call: "空闲", caller: "来电号码", caller_name: "姓名",
    wait: "等待", category: "类别", state: "状态", nuisance_caller: "骚扰号码", complete: "完成转接 (Enter)",
    cancel: "取消 (Esc)", leave: "退出三方 (L)", raise: "提高优先级", handover: "交接单", ticket: "工单号", match_header: "交接编号匹配", match_caller_number: "按来电号码匹配",
    summary: "摘要", destinations: "一键转接", received: "已接收 (反馈)", sent: "已转出 (办理结果)", modes: "运行模式",
    queues: "排队", nuisance: "骚扰号码", confirm: "确认", back: "返回", live: "实时", offline: "离线",
    received_from: "转自 {from} · 坐席 {agent}", from: "来自", reason: "事由", talking: "通话中", ringing: "振铃中",
    transferring: "转接中",
    blind: "直接转", attended: "咨询转", threeway: "三方", expert: "专家座席",
    accepted: "已受理", dispatched: "已派警/派单", resolved: "已办结", returned: "退回", none: "待反馈",
    return_reason: "退回原因", switch_mode: "切换到模式 {mode}?", raise_priority: "提高优先级",
    requested: "请求中", answered: "已接听", completed: "已转接", failed: "失败", refused: "被拒",
    backup_line: "备用线路", agent_left: "已交接", mode_label: "模式", priority: "优先级", release: "解除",
    release_ask: "解除 {num} 的骚扰标记 (重新计数)?", to_remote: "转远程座席",
    to_remote_ask: "将 {queue} 的排队来电转到远程座席?",
    status_waiting: "已送达 {to}, 等待接听", status_answered: "{to} 坐席 {agent} 已接听 (等待 {wait})",
    status_abandoned: "来电人在 {to} 等待 {wait} 后放弃", status_returned: "转接失败, 已回到本席",
  },
  en: {
    title: "Agent console", logout: "Sign out", signin: "Sign in", key: "Key id", secret: "Secret / token", agent: "Agent",
    hotline: "Hotline", role: "Role", role_agent: "Agent", role_supervisor: "Supervisor", signin_button: "Sign in",
    incoming: "Incoming hand-overs", current_call: "Current call", no_call: "Idle", caller: "Caller", caller_name: "Name",
    wait: "Wait", category: "Category", state: "State", nuisance_caller: "Nuisance caller", complete: "Complete (Enter)",
    cancel: "Cancel (Esc)", leave: "Leave three-way (L)", raise: "Raise priority", handover: "Hand-over", ticket: "Ticket", match_header: "matched by hand-over id", match_caller_number: "matched by caller number",
    summary: "Summary", destinations: "One-key transfer", received: "Received (feedback)", sent: "Sent (outcome)",
    modes: "Mode", queues: "Queues", nuisance: "Nuisance callers", confirm: "Confirm", back: "Back", live: "Live",
    offline: "Offline", received_from: "received from {from} · agent {agent}", from: "from", reason: "reason",
    talking: "talking", ringing: "ringing", transferring: "transferring", blind: "blind", attended: "attended", threeway: "three-way",
    expert: "expert seats", accepted: "accepted", dispatched: "dispatched", resolved: "resolved", returned: "returned",
    none: "awaiting feedback", return_reason: "reason for returning", switch_mode: "Switch to mode {mode}?",
    raise_priority: "Raise priority", requested: "requested", answered: "answered", completed: "transferred",
    failed: "failed", refused: "refused", backup_line: "backup line", agent_left: "handed over", mode_label: "mode",
    priority: "priority", release: "release", release_ask: "Release {num} (count its calls afresh)?",
    to_remote: "To remote seats", to_remote_ask: "Send the callers waiting in {queue} to the remote seats?",
    status_waiting: "at {to}, waiting for an agent", status_answered: "answered at {to} by {agent} after {wait}",
    status_abandoned: "caller gave up at {to} after {wait}", status_returned: "failed, back to the agent",
  },
};
const FEEDBACK = ["accepted", "dispatched", "resolved", "returned"];
const $ = (id) => document.getElementById(id);
let lang = localStorage.getItem("cb-lang") || "zh";
let me = null;
let view = null;
let stream = null;
// transfer id → when the view naming it arrived, when its pop was put in the page, and the next frame after
// that (the one that shows it): what bench/console_pop.py and the browser test read
window.cbArrived = {};
window.cbPopShown = {};
window.cbPopFramed = {};
window.cbBannerShown = {};  // transfer id → when "received from" was first drawn (the call answered)

function t(key, vars) {
  let s = (L[lang] && L[lang][key]) || L.zh[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
  return s;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c === null || c === undefined ? "" : c);
  return node;
}

function applyLabels() {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  for (const node of document.querySelectorAll("[data-l]")) node.textContent = t(node.dataset.l);
  $("lang").textContent = lang === "en" ? "中文" : "EN";
  if (view) render(view);
}

async function post(path, body) {
  const resp = await fetch("/console" + path, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-Console": "1"}, body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { data = {ok: false, error: {code: "http_" + resp.status}}; }
  return data;
}

async function act(verb, body) {
  const out = $("action-result");
  out.textContent = "…";
  const reply = await post("/cmd/" + verb, body);
  out.dataset.verb = verb;
  out.dataset.ok = reply.ok ? "1" : "0";
  out.textContent = reply.ok ? verb + ": " + (reply.status || "ok")
    : verb + ": " + (reply.error ? reply.error.code + " — " + reply.error.message : "error");
  return reply;
}

function ask(text) {
  return new Promise((resolve) => {
    const dlg = $("confirm");
    $("confirm-text").textContent = text;
    const done = (yes) => { dlg.close(); $("confirm-yes").onclick = $("confirm-no").onclick = null; resolve(yes); };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    dlg.showModal();
  });
}

function handoverFields() {
  const f = $("handover");
  const out = {};
  for (const name of ["category", "ticket", "summary"]) if (f.elements[name].value.trim()) out[name] = f.elements[name].value.trim();
  return out;
}

function transferTo(dest) {
  if (!view || !view.call) return;
  const body = {call_id: view.call.call_id, to_hotline: dest.to_hotline, ...handoverFields()};
  if (dest.mode === "threeway") return act("three_way", body);
  return act("transfer", {...body, mode: dest.mode});
}

function named(number, name) { return name && name.includes(number) ? name : number + " " + (name || ""); }

function secs(s) { return Math.round(s) + "s"; }

function renderDestinations() {
  const box = $("destinations");
  box.replaceChildren();
  for (const d of view.destinations || []) {
    const b = el("button", {type: "button", "data-to": d.to_hotline, "data-mode": d.mode, "data-shortcut": d.shortcut,
      title: d.label || d.rule}, el("kbd", {}, d.shortcut), " " + named(d.to_hotline, d.name), el("small", {}, t(d.mode) + (d.target === "expert" ? " · " + t("expert") : "")));
    b.disabled = !view.call || view.call.state !== "talking" || !!view.outgoing;
    b.addEventListener("click", () => transferTo(d));
    box.append(b);
  }
}

function renderCall() {
  const c = view.call;
  $("call-empty").hidden = !!c;
  $("call-card").hidden = !c;
  $("nuisance-flag").hidden = !(c && c.nuisance);
  if (c) {
    const card = $("call-card");
    card.querySelector('[data-field="caller_num"]').textContent = c.caller_num;
    card.querySelector('[data-field="caller_name"]').textContent = c.caller_name || "—";
    card.querySelector('[data-field="hotline"]').textContent = named(c.hotline, (me.hotlines || {})[c.hotline]);
    card.querySelector('[data-field="wait"]').textContent = secs(c.wait_s);
    card.querySelector('[data-field="category"]').textContent = c.category ? ((me.categories || {})[c.category] || c.category) : "—";
    card.querySelector('[data-field="state"]').textContent = t(c.state);
  }
  const r = view.received_from;
  const banner = $("received-banner");
  banner.hidden = !(c && r && c.state === "talking");
  if (r && !banner.hidden && !(r.transfer_id in window.cbBannerShown)) window.cbBannerShown[r.transfer_id] = Date.now();
  if (r) {
    banner.textContent = t("received_from", {from: r.from_hotline, agent: r.agent}) + (r.ticket ? " · " + t("ticket") + " " + r.ticket : "")
      + (r.match ? " · " + t("match_" + r.match) : "");  // from another centre: how the call was bound
    banner.dataset.from = r.from_hotline;
  }
  const o = view.outgoing;
  $("outgoing").hidden = !o;
  if (o) {
    $("outgoing-text").textContent = "→ " + o.to_hotline + " · " + t(o.mode) + " · " + t(o.state);
    $("outgoing").dataset.state = o.state;
    $("outgoing").dataset.mode = o.mode;
    $("outgoing").querySelector('[data-act="complete"]').hidden = o.mode !== "attended";
    $("outgoing").querySelector('[data-act="cancel"]').hidden = o.mode !== "attended";
    $("outgoing").querySelector('[data-act="leave"]').hidden = o.mode !== "threeway";
  }
}

function popItem(h) {
  if (!(h.transfer_id in window.cbPopShown)) {
    window.cbPopShown[h.transfer_id] = Date.now();
    requestAnimationFrame(() => { window.cbPopFramed[h.transfer_id] = Date.now(); });
  }
  return el("li", {class: "pop", "data-transfer": h.transfer_id, "data-state": h.state},
    el("strong", {}, t("from") + " " + h.from_hotline + " · " + h.agent), " ",
    el("span", {"data-field": "caller"}, h.caller_num), el("br"),
    el("span", {"data-field": "reason"}, t("reason") + ": " + ((me.categories || {})[h.category] || h.category || "—") + (h.summary ? " — " + h.summary : "")), el("br"),
    el("span", {"data-field": "ticket"}, t("ticket") + ": " + (h.ticket || "—")));
}

function feedbackText(h) {
  const last = h.feedback.length ? h.feedback[h.feedback.length - 1] : null;
  return last ? t(last.outcome) + (last.reason ? " (" + last.reason + ")" : "") : t("none");
}

function lastOutcome(h) { return h.feedback.length ? h.feedback[h.feedback.length - 1].outcome : ""; }

function receivedItem(h) {
  const li = el("li", {"data-transfer": h.transfer_id},
    el("strong", {}, h.from_hotline + " → " + h.to_hotline), " " + (h.ticket || h.transfer_id) + " · ",
    el("span", {"data-field": "feedback", "data-outcome": lastOutcome(h)}, feedbackText(h)), el("br"));
  for (const outcome of FEEDBACK) {
    li.append(el("button", {type: "button", class: "small", "data-feedback": outcome, on: {click: async () => {
      const body = {transfer_id: h.transfer_id, outcome};
      if (outcome === "returned") {
        const reason = window.prompt(t("return_reason"));
        if (!reason) return;
        body.reason = reason;
      }
      await act("handover_feedback", body);
    }}}, t(outcome)));
  }
  return li;
}

// What became of a hand-over the desk sent (console_state.py's status): the other centre's word on the call
// (answered by whom after how long, or the caller gave up there), a failure with its reason, or the state.
function sentStatus(h) {
  const r = h.reached || {};
  const wait = typeof r.wait_s === "number" ? secs(r.wait_s) : "?";
  if (h.status === "answered") return t("status_answered", {to: h.to_hotline, agent: r.agent, wait});
  if (h.status === "abandoned") return t("status_abandoned", {to: h.to_hotline, wait});
  if (h.status === "waiting") return t("status_waiting", {to: h.to_hotline});
  if (h.status === "failed") return t(h.state === "returned" ? "status_returned" : h.state) + (h.reason ? " (" + h.reason + ")" : "");
  return t(h.state);
}

function sentItem(h) {
  return el("li", {"data-transfer": h.transfer_id, "data-state": h.state, "data-status": h.status},
    el("strong", {}, "→ " + h.to_hotline), " " + (h.ticket || h.transfer_id) + " · ",
    el("span", {"data-field": "status", "data-status": h.status}, sentStatus(h)), " · ",
    el("span", {"data-field": "feedback", "data-outcome": lastOutcome(h)}, feedbackText(h)));
}

function renderSupervisor() {
  const sup = me.role === "supervisor";
  $("supervisor").hidden = !sup;
  if (!sup) return;
  const modes = $("mode-buttons");
  modes.replaceChildren();
  for (const m of me.modes || []) {
    const b = el("button", {type: "button", "data-mode": m.name, class: m.name === view.mode ? "on" : ""}, m.label || m.name);
    b.addEventListener("click", async () => {
      if (m.name === view.mode) return;
      if (await ask(t("switch_mode", {mode: m.label || m.name}))) await act("set_mode", {mode: m.name, reason: "console"});
    });
    modes.append(b);
  }
  const qs = $("queues");
  qs.replaceChildren();
  for (const [queue, callers] of Object.entries(view.queues || {})) {
    const rows = callers.map((w) => el("tr", {"data-call": w.call_id},
      el("td", {}, w.caller_num + (w.nuisance ? " ⚠" : "")), el("td", {}, secs(w.wait_s)), el("td", {"data-field": "priority"}, String(w.priority)),
      el("td", {}, el("button", {type: "button", class: "small", "data-raise": w.call_id,
        on: {click: () => act("set_priority", {call_id: w.call_id, priority: Math.min(100, w.priority + 10), reason: "supervisor"})}}, "+10"))));
    const head = el("tr", {}, ...["caller", "wait", "priority", "raise"].map((k) => el("th", {}, t(k))));
    const remote = el("button", {type: "button", class: "small", "data-overflow": queue, on: {click: async () => {
      if (await ask(t("to_remote_ask", {queue}))) await act("overflow_now", {queue, reason: "supervisor"});
    }}}, t("to_remote"));
    qs.append(el("table", {"data-queue": queue}, el("caption", {}, queue + " ", remote), head, ...rows));
  }
  $("nuisance-list").replaceChildren(...(view.nuisance || []).map((n) => el("li", {"data-caller": n.caller_num},
    n.caller_num + " ×" + n.count + " ", el("button", {type: "button", class: "small", "data-release": n.caller_num, on: {click: async () => {
      if (await ask(t("release_ask", {num: n.caller_num}))) await act("nuisance_release", {caller_num: n.caller_num, reason: "supervisor"});
    }}}, t("release")))));
}

function render(v) {
  view = v;
  $("mode").textContent = t("mode_label") + ": " + v.mode;
  $("mode").dataset.mode = v.mode;
  $("pop-list").replaceChildren(...v.incoming.map(popItem));
  renderCall();
  renderDestinations();
  $("received-list").replaceChildren(...v.received.map(receivedItem));
  $("sent-list").replaceChildren(...v.sent.map(sentItem));
  renderSupervisor();
}

function connect() {
  if (stream) stream.close();
  stream = new EventSource("/console/stream");
  stream.addEventListener("view", (e) => {
    const at = Date.now();
    const v = JSON.parse(e.data);
    for (const h of v.incoming) if (!(h.transfer_id in window.cbArrived)) window.cbArrived[h.transfer_id] = at;
    render(v);
  });
  stream.onopen = () => { $("conn").textContent = t("live"); $("conn").className = "conn up"; };
  stream.onerror = () => { $("conn").textContent = t("offline"); $("conn").className = "conn down"; };
}

function signedIn(info) {
  me = info;
  if (info.lang && !localStorage.getItem("cb-lang")) lang = info.lang;
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  $("desk").textContent = named(info.hotline, info.hotlines[info.hotline]) + " · " + info.agent + " · " + t("role_" + info.role);
  const sel = $("handover").elements.category;
  sel.replaceChildren(el("option", {value: ""}, "—"), ...Object.entries(info.categories || {}).map(([k, v]) => el("option", {value: k}, v + " (" + k + ")")));
  applyLabels();
  connect();
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const body = {agent: f.agent.value.trim(), hotline: f.hotline.value.trim(), role: f.role.value, secret: f.secret.value, lang};
  if (f.key.value.trim()) body.key = f.key.value.trim();
  const reply = await post("/login", body);
  if (reply.ok) signedIn(reply);
  else $("login-error").textContent = reply.error ? (reply.error.code || reply.error) + ": " + (reply.error.message || reply.message || "") : (reply.message || "refused");
});
$("lang").addEventListener("click", () => { lang = lang === "en" ? "zh" : "en"; localStorage.setItem("cb-lang", lang); applyLabels(); });
$("logout").addEventListener("click", async () => { await post("/logout"); location.reload(); });
$("outgoing").addEventListener("click", (e) => {
  const which = e.target.dataset && e.target.dataset.act;
  if (!which || !view || !view.outgoing) return;
  const o = view.outgoing;
  if (which === "raise") act("set_priority", {call_id: o.call_id, priority: 90, reason: "agent"});
  else if (which === "leave") act("leave", {call_id: o.call_id});
  else act(which, {call_id: o.call_id, transfer_id: o.transfer_id});
});
// keymap:begin — what a key does in a view, pure (tests/web/test_console_keys.py runs this function alone)
function keyAction(view, key) {
  const dest = (view.destinations || []).find((d) => d.shortcut === key);
  if (dest && view.call && view.call.state === "talking" && !view.outgoing) return {dest};
  const o = view.outgoing;
  if (!o) return null;
  if (key === "Enter" && o.mode === "attended") return {verb: "complete", body: {call_id: o.call_id, transfer_id: o.transfer_id}};
  if (key === "Escape" && o.mode === "attended") return {verb: "cancel", body: {call_id: o.call_id, transfer_id: o.transfer_id}};
  if ((key === "l" || key === "L") && o.mode === "threeway") return {verb: "leave", body: {call_id: o.call_id}};
  return null;
}
// keymap:end
document.addEventListener("keydown", (e) => {
  if (!view || $("confirm").open) return;
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement && document.activeElement.tagName);
  if (typing && !e.altKey) return;
  const a = keyAction(view, e.key);
  if (!a) return;
  if (a.dest) { e.preventDefault(); transferTo(a.dest); return; }
  act(a.verb, a.body);
});

(async () => {
  applyLabels();
  const resp = await fetch("/console/me", {credentials: "same-origin"});
  if (resp.ok) signedIn(await resp.json());
  else $("login").hidden = false;
})();
