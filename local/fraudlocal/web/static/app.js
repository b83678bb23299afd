// The case queue and the case page: plain DOM over the JSON API of fraudlocal serve.
"use strict";

const COLORS = {
  member: "#c62828", account: "#9e9e9e", card: "#6a1b9a", device: "#1565c0",
  ip: "#00838f", email: "#ef6c00", phone: "#2e7d32", merchant: "#5d4037",
};
const SHAPES = {
  account: "ellipse", card: "round-rectangle", device: "rectangle", ip: "diamond",
  email: "triangle", phone: "hexagon", merchant: "star",
};
const state = { rows: [], sortKey: "score", sortDown: true };

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function money(amount, currency) {
  return `${Number(amount).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${currency}`;
}

function stakeText(stake) {
  const entries = Object.entries(stake || {});
  return entries.length ? entries.map(([c, a]) => money(a, c)).join(", ") : "-";
}

function stakeValue(stake) {
  return Object.values(stake || {}).reduce((a, b) => a + b, 0);
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showError(message) {
  $("#error").textContent = message || "";
}

// -- the queue ------------------------------------------------------------------------------

function queueQuery() {
  const params = new URLSearchParams();
  if ($("#filter-status").value) params.set("status", $("#filter-status").value);
  if ($("#filter-verdict").value) params.set("verdict", $("#filter-verdict").value);
  if ($("#search").value.trim()) params.set("q", $("#search").value.trim());
  return params.toString();
}

async function loadQueue() {
  const query = queueQuery();
  $("#export-csv").href = "/api/cases.csv" + (query ? `?${query}` : "");
  try {
    state.rows = await api("/api/cases" + (query ? `?${query}` : ""));
    showError("");
  } catch (error) {
    showError(error.message);
    state.rows = [];
  }
  renderQueue();
}

function sortValue(row, key) {
  if (key === "stake") return stakeValue(row.amount_at_stake);
  return row[key] ?? "";
}

function renderQueue() {
  const hide = $("#hide-superseded").checked;
  const rows = state.rows.filter((row) => !(hide && row.superseded_by));
  const { sortKey, sortDown } = state;
  rows.sort((a, b) => {
    const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return sortDown ? -order : order;
  });
  for (const th of document.querySelectorAll("#queue th[data-key]")) {
    th.classList.toggle("sorted", th.dataset.key === sortKey);
    th.dataset.direction = th.dataset.key === sortKey ? (sortDown ? "desc" : "asc") : "";
  }
  const body = $("#queue tbody");
  body.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        { class: `verdict-${row.verdict} status-${row.status}`, "data-case": row.case_id },
        el("td", {}, el("a", { href: `#/case/${row.case_id}`, class: "case-link" }, row.case_id)),
        el("td", {}, el("span", { class: `badge ${row.verdict}` }, row.verdict)),
        el("td", { class: "num" }, row.score.toFixed(3)),
        el("td", { class: "status" }, row.status),
        el("td", { class: "num" }, row.member_count),
        el("td", { class: "num" }, stakeText(row.amount_at_stake)),
        el("td", {}, row.opened_at || ""),
        el("td", {}, row.updated_at || ""),
        el(
          "td",
          {},
          row.superseded_by ? el("span", { class: "superseded" }, `superseded by ${row.superseded_by} `) : null,
          row.related_cases.map((id) => el("a", { href: `#/case/${id}`, class: "related" }, id, " ")),
        ),
      ),
    ),
  );
  $("#queue-count").textContent = `${rows.length} case${rows.length === 1 ? "" : "s"}`;
}

// -- a case ---------------------------------------------------------------------------------

let currentCase = null;

async function loadCase(caseId) {
  try {
    currentCase = await api(`/api/cases/${encodeURIComponent(caseId)}`);
    showError("");
  } catch (error) {
    showError(error.message);
    return;
  }
  renderCase(currentCase);
}

function renderCase(c) {
  const currencies = Object.keys(c.amount_at_stake || {});
  $("#case-head").replaceChildren(
    ...[
    el("h1", {}, `Case ${c.case_id} `, el("span", { class: `badge ${c.verdict}` }, c.verdict)),
    el(
      "p",
      {},
      `score ${c.score.toFixed(3)} · status `,
      el("strong", { id: "case-status" }, c.status),
      ` · ${c.member_count} members · at stake ${stakeText(c.amount_at_stake)}`,
      ` · opened ${c.opened_at} by ${c.opened_by} · updated ${c.updated_at}`,
    ),
    c.superseded_by
      ? el("p", { class: "superseded" }, "Superseded by ", el("a", { href: `#/case/${c.superseded_by}` }, c.superseded_by),
        ", a stronger case that holds every member of this one.")
      : null,
    c.related_cases.length
      ? el("p", {}, "Related cases (sharing members): ",
        c.related_cases.map((id) => el("a", { href: `#/case/${id}`, class: "related" }, id, " ")))
      : null,
    ].filter(Boolean),
  );
  $("#reasons").replaceChildren(
    ...c.reasons.map((r) =>
      el(
        "li",
        {},
        el("span", { class: "signal" }, r.signal || ""),
        " ",
        r.sentence,
        r.strength !== undefined ? el("span", { class: "strength" }, ` (signal ${r.strength.toFixed(2)})`) : null,
        r.evidence && Object.keys(r.evidence).length
          ? el("details", {}, el("summary", {}, "evidence"), el("pre", {}, JSON.stringify(r.evidence, null, 2)))
          : null,
      ),
    ),
  );
  $("#decisions").replaceChildren(
    ...(c.decisions.length
      ? c.decisions.map((d) =>
        el("li", {}, `${d.at} ${d.by}: ${d.action} (${d.previous_status} → ${d.status})`, d.note ? `: ${d.note}` : ""))
      : [el("li", { class: "none" }, "no decision yet")]),
  );
  // what each re-look found and did: raised, lowered, confirmed, grown, kept, not_applied
  $("#relooks").replaceChildren(
    ...((c.verdict_history || []).length
      ? c.verdict_history.map((h) =>
        el(
          "li",
          {},
          `${h.at} `,
          el("strong", { class: `relook ${h.outcome}` }, h.outcome),
          `: ${h.from.verdict} ${h.from.score.toFixed(3)} → ${h.to.verdict} ${h.to.score.toFixed(3)}`,
          (h.members_added || []).length ? `, members added: ${h.members_added.join(", ")}` : "",
          ` (re-look of ${h.rule} on ${h.entity})`,
        ))
      : [el("li", { class: "none" }, "no re-look")]),
  );
  $("#transactions tbody").replaceChildren(
    ...c.transactions.map((t) =>
      el(
        "tr",
        {},
        el("td", {}, t.time),
        el("td", {}, t.account_id),
        el("td", {}, t.counterparty_account_id || ""),
        el("td", { class: "num" }, money(t.amount, t.currency)),
        el("td", {}, t.merchant_id || ""),
        el("td", {}, t.device_id || ""),
        el("td", {}, t.ip || ""),
        el("td", {}, t.card_id || ""),
        el("td", {}, t.country || ""),
      ),
    ),
  );
  drawGraph(c, currencies.length === 1 ? currencies[0] : "");
  drawTimeline(c);
}

function drawGraph(c, currency) {
  const container = $("#graph");
  const elements = [];
  for (const node of c.graph.nodes) {
    const kind = node.member ? "member" : node.label;
    elements.push({
      data: { id: node.id, name: node.value, color: COLORS[kind] || "#777", shape: SHAPES[node.label] || "ellipse" },
    });
  }
  c.graph.edges.forEach((edge, index) => {
    const money_ = edge.label === "transfers_to";
    elements.push({
      data: {
        id: `e${index}`,
        source: edge.source,
        target: edge.target,
        kind: edge.label,
        name: money_ ? `${money(edge.amount, currency || "")} (${edge.tx_count}×)`.replace("  (", " (") : "",
      },
    });
  });
  const cy = cytoscape({
    container,
    elements,
    layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: 9000 },
    style: [
      { selector: "node", style: { "background-color": "data(color)", shape: "data(shape)", label: "data(name)",
        "font-size": 9, width: 18, height: 18, color: "#222" } },
      { selector: "edge[kind = 'uses']", style: { width: 1, "line-color": "#bbb", "curve-style": "bezier" } },
      { selector: "edge[kind = 'transfers_to']", style: { width: 2.5, "line-color": COLORS.member,
        "target-arrow-color": COLORS.member, "target-arrow-shape": "triangle", "curve-style": "bezier",
        label: "data(name)", "font-size": 8, "text-background-color": "#fff", "text-background-opacity": 0.8 } },
    ],
  });
  container.dataset.nodes = String(cy.nodes().length);
  container.dataset.edges = String(cy.edges().length);
  const legend = [
    ["member", "ellipse", "case member (account)"],
    ["account", "ellipse", "other account"],
    ["card", "round-rectangle", "card"], ["device", "rectangle", "device"], ["ip", "diamond", "IP address"],
    ["email", "triangle", "email"], ["phone", "hexagon", "phone"],
  ];
  $("#legend").replaceChildren(
    ...legend.map(([kind, shape, text]) =>
      el("li", {}, el("span", { class: `swatch ${shape}`, style: `background:${COLORS[kind]}` }), text)),
    el("li", {}, el("span", { class: "arrow" }, "→"), "money transferred (amount, count)"),
    el("li", {}, el("span", { class: "line" }, "—"), "uses (shared by members or named by a reason)"),
  );
}

function drawTimeline(c) {
  const box = $("#timeline");
  const txs = c.transactions;
  if (!txs.length) {
    box.replaceChildren(el("p", {}, "no transactions of the members in the time-series store"));
    return;
  }
  const lanes = [...new Set(txs.map((t) => t.account_id))];
  const times = txs.map((t) => Date.parse(t.time));
  const t0 = Math.min(...times), t1 = Math.max(...times), span = Math.max(t1 - t0, 1);
  const maxAmount = Math.max(...txs.map((t) => t.amount), 1);
  const width = 900, left = 120, laneHeight = 22, height = lanes.length * laneHeight + 30;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("id", "timeline-svg");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  lanes.forEach((lane, i) => {
    add("text", { x: 4, y: i * laneHeight + 19, "font-size": 10 }, lane);
    add("line", { x1: left, x2: width - 10, y1: i * laneHeight + 15, y2: i * laneHeight + 15, stroke: "#eee" });
  });
  txs.forEach((t, i) => {
    const x = left + ((times[i] - t0) / span) * (width - left - 20);
    const y = lanes.indexOf(t.account_id) * laneHeight + 15;
    const r = 2 + 6 * Math.sqrt(t.amount / maxAmount);
    const dot = add("circle", { cx: x, cy: y, r, fill: t.counterparty_account_id ? COLORS.member : COLORS.device,
      "fill-opacity": 0.7, class: "tx" });
    const title = document.createElementNS(ns, "title");
    title.textContent = `${t.time} ${t.account_id}${t.counterparty_account_id ? " → " + t.counterparty_account_id : ""} ${money(t.amount, t.currency)}`;
    dot.append(title);
  });
  add("text", { x: left, y: height - 4, "font-size": 10 }, new Date(t0).toISOString());
  add("text", { x: width - 10, y: height - 4, "font-size": 10, "text-anchor": "end" }, new Date(t1).toISOString());
  box.replaceChildren(svg, el("p", { class: "hint" }, "dot size: amount; red: transfer to another account; blue: payment"));
}

async function decide(action) {
  const by = $("#decision-by").value.trim();
  const note = $("#decision-note").value.trim();
  if (!by) {
    $("#decision-error").textContent = "Say who decides (By).";
    return;
  }
  localStorage.setItem("analyst", by);
  try {
    currentCase = await api(`/api/cases/${encodeURIComponent(currentCase.case_id)}/decisions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action, by, note }),
    });
    $("#decision-error").textContent = "";
    $("#decision-note").value = "";
    renderCase(currentCase);
  } catch (error) {
    $("#decision-error").textContent = error.message;
  }
}

// -- routing --------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/case\/(.+)$/);
  $("#queue-view").hidden = Boolean(match);
  $("#case-view").hidden = !match;
  if (match) {
    $("#where").textContent = " / case";
    loadCase(decodeURIComponent(match[1]));
  } else {
    $("#where").textContent = " / queue";
    loadQueue();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#decision-by").value = localStorage.getItem("analyst") || "";
  for (const id of ["#filter-status", "#filter-verdict"]) $(id).addEventListener("change", loadQueue);
  let timer = null;
  $("#search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(loadQueue, 250);
  });
  $("#hide-superseded").addEventListener("change", renderQueue);
  for (const th of document.querySelectorAll("#queue th[data-key]")) {
    th.addEventListener("click", () => {
      state.sortDown = state.sortKey === th.dataset.key ? !state.sortDown : true;
      state.sortKey = th.dataset.key;
      renderQueue();
    });
  }
  for (const button of document.querySelectorAll("#decision button")) {
    button.addEventListener("click", () => decide(button.dataset.action));
  }
  window.addEventListener("hashchange", route);
  route();
});
