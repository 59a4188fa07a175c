// The zone's admin page (pzh/templates/admin.xml): reads the hub's admin
// API, follows its event stream, and asks the API to pair, cancel codes,
// revoke devices, answer Mesh requests and edit the zone's policy.  Plain script, no build step,
// no inline code (the site's content policy allows script from the hub
// only); text reaches the page through textContent, never as markup.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 15000;
  const STATES = ["connected", "disconnected", "revoked"];
  const SORT_FIELDS = {
    id: (row) => row.id,
    state: (row) => row.state,
    address: (row) => row.address || "",
    last_seen: (row) => row.last_seen || "",
    expires: (row) => row.not_after || "",
  };

  const devices = new Map(); // device id -> its row from the API
  const deviceRows = new Map(); // device id -> its <tr>
  const codes = new Map(); // code id -> {id, device, expires}
  let csrf = null;
  let sort = { key: "id", ascending: true };
  let shown = null; // the code shown in #pair-result: {id, expires, ended}
  let uptime = null; // {seconds, at}: the hub's uptime at a moment of this clock
  let clockOffset = 0; // the hub's clock minus this browser's, in ms
  let pendingRevoke = null;
  let pendingRule = null; // the rule the removal dialog asks about
  let source = null;
  let refreshTimer = null;

  const byId = (id) => document.getElementById(id);

  // -- small helpers ---------------------------------------------------------

  function element(tag, options, children) {
    const node = document.createElement(tag);
    const o = options || {};
    if (o.className) node.className = o.className;
    if (o.text !== undefined) node.textContent = o.text;
    for (const [name, value] of Object.entries(o.attrs || {})) node.setAttribute(name, value);
    for (const [name, value] of Object.entries(o.data || {})) node.dataset[name] = value;
    for (const child of children || []) node.append(child);
    return node;
  }

  function notice(text) {
    byId("notice").textContent = text;
  }

  function hubNow() {
    return Date.now() + clockOffset;
  }

  // An ISO time of the hub as "2026-11-30 12:00:00 UTC", in a <time>.
  function timeNode(iso, missing) {
    if (!iso) return document.createTextNode(missing);
    const text = String(iso).replace("T", " ").replace(/(\+00:00|Z)$/, " UTC");
    return element("time", { text: text, attrs: { datetime: iso } });
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s % 60} s`;
    return `${s} s`;
  }

  function timeLeft(iso) {
    const left = Math.floor((Date.parse(iso) - hubNow()) / 1000);
    if (!(left > 0)) return null;
    return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  }

  function shortName(deviceId) {
    return deviceId.slice(deviceId.lastIndexOf("/") + 1);
  }

  // -- the API ---------------------------------------------------------------

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function signedOut() {
    // The page at / now says how to sign in again.
    window.location.assign("/");
  }

  async function call(method, path, body) {
    const options = { method: method, headers: { Accept: "application/json" },
                      credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = await csrfToken();
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      throw new APIError(0, "OFFLINE", "the hub cannot be reached");
    }
    const date = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(date)) clockOffset = date - Date.now();
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (response.status === 401) {
      signedOut();
      throw new APIError(401, "NOT_AUTHORISED", "this session has ended");
    }
    if (!response.ok) {
      throw new APIError(response.status, (data && data.code) || `HTTP_${response.status}`,
                         (data && data.message) || response.statusText);
    }
    return data;
  }

  async function csrfToken() {
    if (csrf === null) csrf = (await call("GET", "/session")).csrf;
    return csrf;
  }

  function failed(error) {
    if (error instanceof APIError && error.status === 401) return;
    notice(error.message ? `${error.message}.`.replace(/\.\.$/, ".") : String(error));
  }

  // -- the zone --------------------------------------------------------------

  async function loadZone() {
    const zone = await call("GET", "/api/zone");
    byId("zone-id").textContent = zone.zone;
    byId("ca-fingerprint").textContent = zone.ca_fingerprint;
    byId("hub-address").textContent = zone.hub;
    uptime = zone.uptime === null ? null : { seconds: zone.uptime, at: Date.now() };
    showUptime();
  }

  function showUptime() {
    byId("uptime").textContent = uptime === null
      ? "not running"
      : duration(uptime.seconds + (Date.now() - uptime.at) / 1000);
  }

  function showCounts() {
    const counts = { connected: 0, disconnected: 0, revoked: 0 };
    for (const row of devices.values()) counts[row.state] += 1;
    for (const state of STATES) byId(`count-${state}`).textContent = String(counts[state]);
  }

  // -- devices ---------------------------------------------------------------

  function cell(className, label, content) {
    const td = element("td", { className: className, data: { label: label } });
    td.append(content);
    return td;
  }

  function fillRow(tr, row) {
    tr.dataset.state = row.state;
    tr.replaceChildren(
      cell("id", "Device", row.id),
      cell("state", "State", row.state),
      cell("address", "Address", row.address || "—"),
      cell("last-seen", "Last seen", timeNode(row.last_seen, "never")),
      cell("expires", "Certificate expires", timeNode(row.not_after, "unknown")),
    );
    const action = element("td", { className: "action", data: { label: "Action" } });
    if (row.state !== "revoked") {
      const button = element("button", {
        className: "revoke", text: "Revoke",
        attrs: { type: "button", "aria-label": `Revoke ${shortName(row.id)}` },
      });
      button.addEventListener("click", () => askRevoke(row.id));
      action.append(button);
    }
    tr.append(action);
  }

  function updateDevice(row) {
    const focused = document.activeElement;
    devices.set(row.id, row);
    let tr = deviceRows.get(row.id);
    const hadFocus = tr !== undefined && tr.contains(focused);
    if (tr === undefined) {
      tr = element("tr", { data: { device: row.id } });
      deviceRows.set(row.id, tr);
    }
    fillRow(tr, row);
    if (hadFocus) {
      const button = tr.querySelector("button.revoke");
      (button || byId("devices-region")).focus();
    }
  }

  function showDevices() {
    const field = SORT_FIELDS[sort.key];
    const ids = Array.from(devices.keys()).sort((a, b) => {
      const x = field(devices.get(a));
      const y = field(devices.get(b));
      const order = x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0;
      return sort.ascending ? order : -order;
    });
    const tbody = byId("devices").tBodies[0];
    const current = Array.from(tbody.rows, (tr) => tr.dataset.device);
    if (current.join("\n") !== ids.join("\n")) {
      // Only when the order changed: moving a row takes its focus away.
      tbody.replaceChildren(...ids.map((id) => deviceRows.get(id)));
    }
    const filter = byId("device-filter").value.trim().toLowerCase();
    let visible = 0;
    for (const id of ids) {
      const row = devices.get(id);
      const text = `${row.id} ${row.state} ${row.address || ""}`.toLowerCase();
      const match = !filter || text.includes(filter);
      deviceRows.get(id).hidden = !match;
      if (match) visible += 1;
    }
    const none = byId("devices-none");
    none.hidden = visible > 0;
    none.textContent = devices.size
      ? "No device matches the filter."
      : "No device has been enrolled yet: pair one below.";
    for (const button of document.querySelectorAll("#devices button[data-sort]")) {
      const th = button.closest("th");
      if (button.dataset.sort === sort.key) {
        th.setAttribute("aria-sort", sort.ascending ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    }
    showCounts();
  }

  async function loadDevices() {
    const rows = await call("GET", "/api/devices");
    const ids = new Set(rows.map((row) => row.id));
    for (const id of Array.from(devices.keys())) {
      if (!ids.has(id)) {
        devices.delete(id);
        deviceRows.delete(id);
      }
    }
    for (const row of rows) updateDevice(row);
    showDevices();
  }

  // -- revoking --------------------------------------------------------------

  function askRevoke(deviceId) {
    pendingRevoke = deviceId;
    const dialog = byId("confirm");
    byId("confirm-text").textContent =
      `Revoke ${deviceId}? Its certificate is revoked at once: it can no longer connect to ` +
      "the zone, and wipes what it holds of it. This cannot be undone.";
    dialog.returnValue = "";
    dialog.showModal();
  }

  async function revoke(deviceId) {
    try {
      const result = await call("POST", `/api/devices/${encodeURIComponent(deviceId)}/revoke`);
      updateDevice(result.row);
      showDevices();
      notice(result.serials.length
        ? `${deviceId} is revoked.`
        : `${deviceId} was already revoked.`);
    } catch (error) {
      failed(error);
    }
  }

  // -- pairing codes ---------------------------------------------------------

  function qrNode(svgText) {
    const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    const root = doc.documentElement;
    if (doc.getElementsByTagName("parsererror").length || root.namespaceURI !== SVG_NS ||
        root.localName !== "svg") {
      return null;
    }
    for (const unwanted of Array.from(root.querySelectorAll("script, foreignObject"))) {
      unwanted.remove();
    }
    const svg = document.importNode(root, true);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "QR code of the pairing code");
    return svg;
  }

  function showCodes() {
    const list = byId("codes");
    for (const code of Array.from(codes.values())) {
      if (timeLeft(code.expires) === null) codes.delete(code.id);
    }
    const rows = Array.from(codes.values()).sort((a, b) =>
      a.expires < b.expires ? -1 : a.expires > b.expires ? 1 : 0);
    list.replaceChildren(...rows.map((code) => {
      const button = element("button", {
        className: "cancel", text: "Cancel",
        attrs: { type: "button", "aria-label": `Cancel the code for ${shortName(code.device)}` },
      });
      button.addEventListener("click", () => cancelCode(code.id));
      return element("li", { data: { codeId: code.id } }, [
        element("span", { className: "device", text: code.device }),
        " — ",
        element("span", { className: "time-left", text: timeLeft(code.expires) }),
        " left ",
        button,
      ]);
    }));
    byId("codes-none").hidden = rows.length > 0;
  }

  async function loadCodes() {
    const rows = await call("GET", "/api/codes");
    codes.clear();
    for (const row of rows) codes.set(row.id, row);
    showCodes();
  }

  function endShown(id, how) {
    if (shown !== null && shown.id === id) {
      shown.ended = how;
      byId("pair-result").dataset.ended = how;
      showTimeLeft();
    }
  }

  function showTimeLeft() {
    if (shown === null) return;
    byId("pair-time-left").textContent = shown.ended || timeLeft(shown.expires) || "expired";
  }

  async function pair(event) {
    event.preventDefault();
    const input = byId("pair-device");
    const submit = byId("pair-submit");
    submit.disabled = true;
    try {
      const made = await call("POST", "/api/codes", { device: input.value.trim() });
      shown = { id: made.id, expires: made.expires, ended: null };
      byId("pair-for").textContent = made.device;
      byId("pair-code").textContent = made.code;
      const qr = qrNode(made.qr_svg || "");
      byId("pair-qr").replaceChildren(...(qr ? [qr] : []));
      const result = byId("pair-result");
      delete result.dataset.ended;
      result.hidden = false;
      showTimeLeft();
      codes.set(made.id, { id: made.id, device: made.device, expires: made.expires });
      showCodes();
      input.value = "";
      notice(`Pairing code made for ${made.device}.`);
    } catch (error) {
      failed(error);
    } finally {
      submit.disabled = false;
    }
  }

  async function cancelCode(id) {
    try {
      const result = await call("POST", `/api/codes/${encodeURIComponent(id)}/cancel`);
      codes.delete(id);
      showCodes();
      endShown(id, "cancelled");
      notice(`The pairing code for ${result.device} is cancelled.`);
      byId("pair-device").focus();
    } catch (error) {
      failed(error);
      if (error.code === "TOKEN_INVALID") loadCodes().catch(failed);
    }
  }

  // -- Mesh ------------------------------------------------------------------

  function requestItem(request) {
    const item = element("li", { data: { request: request.id } }, [
      element("span", { className: "name", text: request.name || request.id }),
      ` asks to join ${request.account} (${request.signature}), `,
      timeNode(request.requested, ""),
      " ",
    ]);
    for (const answer of ["approve", "refuse"]) {
      const button = element("button", {
        className: answer, text: answer === "approve" ? "Approve" : "Refuse",
        attrs: { type: "button",
                 "aria-label": `${answer === "approve" ? "Approve" : "Refuse"} ${request.name || request.id}` },
      });
      button.addEventListener("click", () => answerMesh(request, answer, item));
      item.append(button, " ");
    }
    return item;
  }

  async function loadMesh() {
    const list = byId("mesh-requests");
    let rows;
    try {
      rows = await call("GET", "/api/mesh/pending");
    } catch (error) {
      if (error.code !== "NOT_RUNNING") throw error;
      list.replaceChildren();
      byId("mesh-off").hidden = false;
      byId("mesh-none").hidden = true;
      return;
    }
    byId("mesh-off").hidden = true;
    byId("mesh-none").hidden = rows.length > 0;
    // Keep a keyboard user's place when the list is redrawn.
    const active = document.activeElement;
    const held = active && list.contains(active)
      ? { request: active.closest("[data-request]").dataset.request, answer: active.className }
      : null;
    list.replaceChildren(...rows.map(requestItem));
    if (held !== null) {
      for (const item of list.children) {
        if (item.dataset.request === held.request) {
          const button = item.querySelector(`button.${held.answer}`);
          if (button) button.focus();
        }
      }
    }
  }

  async function answerMesh(request, answer, item) {
    for (const button of item.querySelectorAll("button")) button.disabled = true;
    try {
      const result = await call(
        "POST", `/api/mesh/pending/${encodeURIComponent(request.id)}/${answer}`);
      notice(`${result.name || request.name || request.id} (${result.device}): ` +
             `${result.result} by ${result.account}.`);
    } catch (error) {
      failed(error);
    }
    try {
      await loadMesh();
    } catch (error) {
      failed(error);
    }
  }

  // -- sync and services -----------------------------------------------------

  // A panel whose route the hub may not have: an empty table and a note.
  async function loadOptional(path, what, noteId) {
    const note = byId(noteId);
    try {
      const rows = await call("GET", path);
      note.hidden = true;
      return Array.isArray(rows) ? rows : [];
    } catch (error) {
      if (error.code !== "UNKNOWN_MESSAGE") throw error;
      note.textContent = `This hub does not report ${what}.`;
      note.hidden = false;
      return [];
    }
  }

  async function loadSync() {
    const rows = await loadOptional("/api/sync", "synchronisation", "sync-note");
    byId("sync").tBodies[0].replaceChildren(...rows.map((row) => element(
      "tr", { data: { device: row.device } }, [
        cell("device", "Device", row.device),
        cell("state", "State", row.state),
        cell("last-sync", "Last synchronised", timeNode(row.last_sync, "never")),
        cell("conflicts", "Conflicts", String(row.conflicts)),
      ])));
    if (rows.length === 0 && byId("sync-note").hidden) {
      byId("sync-note").textContent = "No device has synchronised yet.";
      byId("sync-note").hidden = false;
    }
    const conflicts = await loadOptional("/api/sync/conflicts", "conflicts", "conflicts-note");
    byId("conflicts").replaceChildren(...conflicts.map((c) => element("li", {}, [
      element("code", { text: c.path }), ` (${c.device}, `, timeNode(c.time, "time unknown"), ")",
    ])));
    if (conflicts.length === 0 && byId("conflicts-note").hidden) {
      byId("conflicts-note").textContent = "No conflict.";
      byId("conflicts-note").hidden = false;
    }
  }

  async function loadServices() {
    const rows = await loadOptional("/api/services", "services", "services-note");
    byId("services").tBodies[0].replaceChildren(...rows.map((row) => element(
      "tr", { data: { device: row.device, service: row.service } }, [
        cell("device", "Device", row.device),
        cell("service", "Service", row.service),
        cell("methods", "Methods", (row.methods || []).join(", ")),
      ])));
    if (rows.length === 0 && byId("services-note").hidden) {
      byId("services-note").textContent = "No device offers a service yet.";
      byId("services-note").hidden = false;
    }
  }

  async function loadZones() {
    const rows = await loadOptional("/api/zones", "friend zones", "zones-note");
    byId("zones").tBodies[0].replaceChildren(...rows.map((row) => element(
      "tr", { data: { zone: row.zone } }, [
        cell("zone", "Zone", row.zone),
        cell("hub", "Hub", row.hub),
        cell("fingerprint", "CA fingerprint", row.fingerprint),
        cell("since", "Trusted since", timeNode(row.since, "")),
        cell("link", "Link", row.link),
      ])));
    if (rows.length === 0 && byId("zones-note").hidden) {
      byId("zones-note").textContent =
        "No friend zone yet: pzctl --hub-dir DIR invite-zone makes an invitation.";
      byId("zones-note").hidden = false;
    }
  }

  // -- the policy ------------------------------------------------------------

  function describeRule(rule) {
    if (rule.item) return `${rule.effect} sharing ${rule.item} with ${rule.subject || "anyone"}`;
    return `${rule.effect} for ${rule.subject || "any caller"}, ` +
      `service ${rule.service || "any"}, method ${rule.method || "any"}`;
  }

  function ruleRow(rule) {
    const button = element("button", {
      className: "remove", text: "Remove",
      attrs: { type: "button", "aria-label": `Remove the rule ${rule.id}` },
    });
    button.addEventListener("click", () => askRemoveRule(rule));
    return element("tr", { data: { rule: rule.id, effect: rule.effect } }, [
      cell("rule", "Rule", rule.simple ? rule.id : `${rule.id} (and more: see the XML)`),
      cell("effect", "Effect", rule.effect),
      cell("subject", "Subject", rule.subject || "any"),
      cell("service", "Service", rule.service || "any"),
      cell("method", "Method", rule.method || "any"),
      cell("item", "Shared item", rule.item || "none"),
      cell("in-policy", "In policy", rule.policy),
      element("td", { className: "action", data: { label: "Action" } }, [button]),
    ]);
  }

  async function loadPolicy() {
    const tbody = byId("policy-rules").tBodies[0];
    const note = byId("policy-note");
    const problem = byId("policy-error");
    let shown;
    try {
      shown = await call("GET", "/api/policy");
    } catch (error) {
      if (error.code !== "NOT_RUNNING" && error.code !== "UNKNOWN_MESSAGE") throw error;
      tbody.replaceChildren();
      problem.hidden = true;
      note.textContent = error.code === "NOT_RUNNING"
        ? "This hub does not synchronise the zone's items, so it keeps no policy."
        : "This hub does not report its policy.";
      note.hidden = false;
      byId("policy-submit").disabled = true;
      return;
    }
    byId("policy-submit").disabled = false;
    problem.textContent = shown.error
      ? `The policy does not parse; the devices keep the one they had. ${shown.error}`
      : "";
    problem.hidden = !shown.error;
    // Keep a keyboard user's place when the table is redrawn.
    const active = document.activeElement;
    const held = active && tbody.contains(active) ? active.closest("tr").dataset.rule : null;
    tbody.replaceChildren(...shown.rules.map(ruleRow));
    for (const tr of tbody.rows) {
      if (held !== null && tr.dataset.rule === held) tr.querySelector("button.remove").focus();
    }
    note.textContent = "The policy has no rule.";
    note.hidden = shown.rules.length > 0 || Boolean(shown.error);
  }

  function askRemoveRule(rule) {
    pendingRule = rule.id;
    const dialog = byId("confirm-rule");
    byId("confirm-rule-text").textContent =
      `Remove the rule ${rule.id} (${describeRule(rule)})? ` +
      "The change syncs to every device, which applies it from its next call.";
    dialog.returnValue = "";
    dialog.showModal();
  }

  async function removeRule(ruleId) {
    try {
      await call("POST", `/api/policy/rules/${encodeURIComponent(ruleId)}/remove`);
      notice(`The rule ${ruleId} is removed.`);
    } catch (error) {
      failed(error);
    }
    try {
      await loadPolicy();
    } catch (error) {
      failed(error);
    }
    byId("policy-region").focus();
  }

  async function addPolicyRule(event) {
    event.preventDefault();
    const submit = byId("policy-submit");
    const fields = ["policy-subject", "policy-service", "policy-method", "policy-item"];
    const given = (id) => byId(id).value.trim() || null;
    submit.disabled = true;
    try {
      const added = await call("POST", "/api/policy/rules", {
        effect: byId("policy-effect").value,
        subject: given("policy-subject"),
        service: given("policy-service"),
        method: given("policy-method"),
        item: given("policy-item"),
        first: byId("policy-first").checked,
      });
      for (const id of fields) byId(id).value = "";
      byId("policy-first").checked = false;
      notice(`The rule ${added.rule} is added.`);
      await loadPolicy();
    } catch (error) {
      failed(error);
    } finally {
      submit.disabled = false;
    }
  }

  // -- loading and live changes ----------------------------------------------

  function loadAll() {
    for (const load of [loadZone, loadDevices, loadCodes, loadMesh, loadSync, loadServices,
                        loadZones, loadPolicy]) {
      load().catch(failed);
    }
  }

  function refreshSlow() {
    if (document.hidden) return;
    for (const load of [loadZone, loadMesh, loadSync, loadServices, loadZones]) {
      load().catch(failed);
    }
  }

  function setLive(live) {
    byId("live").textContent = live ? "live" : "offline";
  }

  function listen() {
    source = new EventSource("/api/events");
    source.addEventListener("open", () => {
      setLive(true);
      loadAll(); // whatever happened while the stream was closed
    });
    source.addEventListener("error", () => {
      setLive(false);
      if (source.readyState === EventSource.CLOSED) {
        // Refused (signed out, or too many streams): a signed-out session
        // shows the sign-in page; otherwise try again a little later.
        call("GET", "/session").then(() => window.setTimeout(listen, 5000), failed);
      }
    });
    source.addEventListener("device", (event) => {
      updateDevice(JSON.parse(event.data));
      showDevices();
      // An enrolment through the Mesh portal also ends a pending request;
      // a device enrolled, revoked or back has its sync row and services.
      window.clearTimeout(refreshTimer);
      refreshTimer = window.setTimeout(() => {
        for (const load of [loadMesh, loadSync, loadServices]) load().catch(failed);
      }, 500);
    });
    // A Mesh request stored or answered (from here, pzctl or another tab).
    source.addEventListener("mesh", () => loadMesh().catch(failed));
    source.addEventListener("sync", () => loadSync().catch(failed));
    // A zone trusted, untrusted, or its link up or down.
    source.addEventListener("zone", () => loadZones().catch(failed));
    // The zone's policy edited here, by pzctl or on a device.
    source.addEventListener("policy", () => loadPolicy().catch(failed));
    source.addEventListener("code", (event) => {
      const code = JSON.parse(event.data);
      if (code.event === "made") {
        codes.set(code.id, { id: code.id, device: code.device, expires: code.expires });
      } else {
        codes.delete(code.id);
        endShown(code.id, code.event === "used" ? "used: the device is enrolled" : code.event);
      }
      showCodes();
    });
  }

  function tick() {
    showUptime();
    showTimeLeft();
    for (const item of byId("codes").children) {
      const code = codes.get(item.dataset.codeId);
      if (code === undefined) continue;
      const left = timeLeft(code.expires);
      if (left === null) {
        codes.delete(code.id);
        showCodes();
        return;
      }
      item.querySelector(".time-left").textContent = left;
    }
  }

  async function signOut() {
    try {
      await call("POST", "/signout");
    } catch (error) {
      failed(error);
      return;
    }
    if (source !== null) source.close();
    signedOut();
  }

  function start() {
    byId("pair-form").addEventListener("submit", pair);
    byId("signout").addEventListener("click", signOut);
    byId("device-filter").addEventListener("input", showDevices);
    for (const button of document.querySelectorAll("#devices button[data-sort]")) {
      button.addEventListener("click", () => {
        const key = button.dataset.sort;
        sort = { key: key, ascending: sort.key === key ? !sort.ascending : true };
        showDevices();
      });
    }
    const dialog = byId("confirm");
    byId("confirm-yes").addEventListener("click", () => dialog.close("yes"));
    byId("confirm-no").addEventListener("click", () => dialog.close("no"));
    dialog.addEventListener("close", () => {
      const deviceId = pendingRevoke;
      pendingRevoke = null;
      if (dialog.returnValue === "yes" && deviceId !== null) revoke(deviceId);
      else if (deviceId !== null) notice(`${deviceId} is not revoked.`);
    });
    byId("policy-form").addEventListener("submit", addPolicyRule);
    const ruleDialog = byId("confirm-rule");
    byId("confirm-rule-yes").addEventListener("click", () => ruleDialog.close("yes"));
    byId("confirm-rule-no").addEventListener("click", () => ruleDialog.close("no"));
    ruleDialog.addEventListener("close", () => {
      const ruleId = pendingRule;
      pendingRule = null;
      if (ruleDialog.returnValue === "yes" && ruleId !== null) removeRule(ruleId);
      else if (ruleId !== null) notice(`The rule ${ruleId} is kept.`);
    });
    loadAll();
    listen();
    window.setInterval(tick, 1000);
    window.setInterval(refreshSlow, REFRESH_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
