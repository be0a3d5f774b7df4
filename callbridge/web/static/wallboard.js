// callbridge wallboard: draws the board snapshots pushed over Server-Sent Events. Read-only.
// All text from the server goes through textContent (never innerHTML): numbers and reasons are data.
"use strict";
(function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  const streamUrl = "/events/stream" + (token ? "?token=" + encodeURIComponent(token) : "");
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(c);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, String(v));
    }
    return node;
  }
  function pct(rate) { return rate === null || rate === undefined ? "–" : Math.round(rate * 1000) / 10 + "%"; }
  function secs(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    return s < 60 ? s + "s" : Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  }
  function stat(field, value, zh, en, hot) {
    return el("div", { class: "stat" + (hot ? " hot" : "") }, [
      el("div", { class: "v", "data-field": field, text: String(value) }),
      el("div", { class: "k", text: zh + " " + en }),
    ]);
  }

  function tile(h) {
    const rateBox = el("div", { class: "rate" }, [
      el("div", { class: "rate-row" }, [
        el("span", { class: "k", text: "今日人工接通率 Answer rate today" }),
        el("span", { class: "rate-val", "data-field": "answer_rate", text: pct(h.answer_rate_today) }),
      ]),
    ]);
    const bar = el("div", { class: "bar" }, [
      el("div", { class: "bar-fill", style: "width:" + Math.round((h.answer_rate_today || 0) * 100) + "%" }),
      el("div", { class: "bar-target", style: "left:" + h.target * 100 + "%" }),
      el("div", { class: "bar-target-label", style: "left:" + h.target * 100 + "%",
        text: "目标 target " + Math.round(h.target * 100) + "%" }),
    ]);
    rateBox.appendChild(bar);
    const head = el("div", { class: "tile-head" }, [
      el("span", { class: "tile-num", text: h.hotline }),
      // Dialplan names often start with the number ("110 报警服务台"); the number is shown beside it already.
      el("span", { class: "tile-name", text: h.name.startsWith(h.hotline) ? h.name.slice(h.hotline.length).trim() : h.name }),
    ]);
    if (h.overflow_active) head.appendChild(el("span", { class: "badge", text: "溢出中 Overflow" }));
    return el("article", {
      class: "tile" + (h.below_target ? " low" : "") + (h.overflow_active ? " overflow" : ""),
      "data-hotline": h.hotline,
    }, [
      head,
      el("div", { class: "stats" }, [
        stat("waiting", h.waiting, "等待来电", "Waiting", h.waiting > 0),
        stat("longest_wait", secs(h.longest_wait_s), "最长等待", "Longest wait", h.longest_wait_s >= 60),
        stat("agents_free", h.agents_free, "空闲坐席", "Agents free", false),
      ]),
      rateBox,
      el("div", { class: "today" }, [
        el("span", {}, [document.createTextNode("呼入 Offered "),
          el("b", { "data-field": "offered", text: String(h.offered_today) })]),
        el("span", {}, [document.createTextNode("接通 Answered "),
          el("b", { "data-field": "answered", text: String(h.answered_today) })]),
        el("span", {}, [document.createTextNode("放弃 Abandoned "),
          el("b", { "data-field": "abandoned", text: String(h.abandoned_today) })]),
      ]),
    ]);
  }

  function drawFlows(snapshot) {
    const root = document.getElementById("flows");
    root.replaceChildren();
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
    marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#4aa3ff" }));
    defs.appendChild(marker);
    root.appendChild(defs);
    const names = snapshot.hotlines.map((h) => h.hotline);
    for (const f of snapshot.flows) for (const n of [f.from, f.to]) if (n && !names.includes(n)) names.push(n);
    const cx = 260, cy = 150, r = names.length > 1 ? 115 : 0, pos = {};
    names.forEach((n, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(names.length, 1);
      pos[n] = [cx + r * Math.cos(a), cy + r * Math.sin(a)];
    });
    for (const f of snapshot.flows) {
      const p = pos[f.from], q = pos[f.to];
      if (!p || !q || f.from === f.to) continue;
      const dx = q[0] - p[0], dy = q[1] - p[1], len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len, rr = 30;
      const x1 = p[0] + ux * rr, y1 = p[1] + uy * rr, x2 = q[0] - ux * rr, y2 = q[1] - uy * rr;
      // bend each direction to its own side so A→B and B→A do not overlap
      const mx = (x1 + x2) / 2 - uy * 22, my = (y1 + y2) / 2 + ux * 22;
      root.appendChild(svg("path", {
        class: "flow" + (f.active ? "" : " idle"), d: `M${x1},${y1} Q${mx},${my} ${x2},${y2}`,
        "stroke-width": 2 + Math.min(f.active, 6) * 2, "marker-end": "url(#arrow)",
        "data-flow": f.from + ">" + f.to,
      }));
      // label on the curve, nearer the source, so labels of crossing flows do not sit on each other
      const t = 0.35, lx = (1 - t) ** 2 * x1 + 2 * (1 - t) * t * mx + t * t * x2;
      const ly = (1 - t) ** 2 * y1 + 2 * (1 - t) * t * my + t * t * y2;
      root.appendChild(svg("text", { class: "flow-label", x: lx - uy * 14, y: ly + ux * 14 + 5,
        text: f.active + " / " + f.today }));
    }
    for (const n of names) {
      const g = svg("g", { class: "node" });
      g.appendChild(svg("circle", { cx: pos[n][0], cy: pos[n][1], r: 28 }));
      g.appendChild(svg("text", { x: pos[n][0], y: pos[n][1], text: n }));
      root.appendChild(g);
    }
    root.appendChild(svg("text", { x: 8, y: 292, fill: "#8fa3b8", "font-size": 13,
      text: "线上数字: 进行中 / 今日 · active / today" }));
  }

  function drawAlarms(snapshot) {
    const list = document.getElementById("alarms");
    list.replaceChildren();
    if (!snapshot.alarms.length) {
      list.appendChild(el("li", { class: "empty", text: "暂无告警 No alarms" }));
      return;
    }
    for (const a of snapshot.alarms.slice(0, 10)) {
      const kind = a.type.startsWith("kpi.") ? "kpi" : a.type.endsWith("failed") ? "fail" : "";
      list.appendChild(el("li", { class: kind, "data-alarm": a.type }, [
        el("span", { class: "t", text: (a.at || "").slice(11, 19) }),
        el("span", { class: "l", text: a.label }),
        el("span", { class: "d", text: a.text || "" }),
      ]));
    }
  }

  function render(snapshot) {
    document.getElementById("tiles").replaceChildren(...snapshot.hotlines.map(tile));
    drawFlows(snapshot);
    drawAlarms(snapshot);
    document.getElementById("clock").textContent = (snapshot.at || "").slice(11, 19);
    document.body.dataset.version = String(snapshot.version);
  }

  function setConn(up) {
    const c = document.getElementById("conn");
    c.className = "conn " + (up ? "up" : "down");
    c.textContent = up ? "实时 Live" : "已断开 Disconnected";
  }

  const source = new EventSource(streamUrl);
  source.addEventListener("snapshot", (ev) => { setConn(true); render(JSON.parse(ev.data)); });
  source.onerror = () => setConn(false);  // EventSource reconnects by itself
})();
