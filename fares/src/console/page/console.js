// The fares console's page: plain JavaScript, no framework, nothing loaded from elsewhere.
// Every text from the server goes into the page with textContent, never as HTML — except the
// choreography SVG, which the console generates from its own step table.
"use strict";

const $ = (id) => document.getElementById(id);

/** GET/POST a console endpoint; throws an Error with the server's message. */
async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
  }
  return body;
}

function post(path, data) {
  return api(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(data),
  });
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  return td;
}

function fareCell(fareId) {
  const td = document.createElement("td");
  const a = document.createElement("a");
  a.textContent = fareId;
  a.href = "#";
  a.addEventListener("click", (event) => {
    event.preventDefault();
    $("search-input").value = fareId;
    showFare(fareId, false);
  });
  td.appendChild(a);
  return td;
}

function say(id, text, isError) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// --- sources and live outcomes -------------------------------------------------------------

function renderSources(health) {
  const items = (health.sources || []).map((source) => {
    const li = document.createElement("li");
    li.className = source.state;
    li.dataset.source = source.name;
    li.textContent = `${source.name} (${source.at}): ${source.state}` +
      (source.problem ? ` — ${source.problem}` : "");
    return li;
  });
  $("sources").replaceChildren(...items);
}

function renderLive(live) {
  $("count-collected").textContent = live.counts.collected;
  $("count-failed").textContent = live.counts.failed;
  $("count-attention").textContent = live.counts.needs_attention;
  $("rate").textContent = live.rate_per_sec.toFixed(1);
  $("rate-window").textContent = `(last ${live.rate_window_secs} s)`;
  const highest = Math.max(1, ...live.per_second);
  const bars = live.per_second.map((n, i) => {
    const bar = document.createElement("span");
    bar.style.height = `${Math.round((100 * n) / highest)}%`;
    bar.title = `${n} outcome(s), ${live.per_second.length - i} s ago`;
    return bar;
  });
  $("sparkline").replaceChildren(...bars);
  const problem = live.problem || (live.reading ? "" : "not reading fare-outcomes yet");
  $("live-problem").hidden = !problem;
  $("live-problem").textContent = problem ? `fare-outcomes: ${problem}` : "";
  fill($("outcomes").tBodies[0], live.outcomes.map((o) => {
    const tr = document.createElement("tr");
    tr.className = o.event_type + (o.needs_attention ? " attention" : "");
    tr.dataset.fareId = o.fare_id;
    tr.append(cell(o.occurred_at), fareCell(o.fare_id), cell(o.event_type), cell(o.detail));
    return tr;
  }));
}

let markersFilled = false;

function fillMarkers(markers) {
  if (markersFilled || !markers) return;
  markersFilled = true;
  for (const marker of markers) {
    const option = document.createElement("option");
    option.value = marker;
    option.textContent = marker;
    $("request-marker").appendChild(option);
  }
}

async function refreshOverview() {
  try {
    const overview = await api("/api/overview?limit=25");
    renderSources(overview.health);
    renderLive(overview.live);
    fillMarkers(overview.markers);
  } catch (error) {
    renderSources({
      sources: [{ name: "fares console", at: location.host, state: "unreachable", problem: error.message }],
    });
  }
}

// --- one fare ------------------------------------------------------------------------------

let shownFare = null;

function renderFare(report) {
  $("fare").hidden = false;
  $("fare-id").textContent = report.fare_id;
  const stuck = report.stuck;
  $("fare-status").textContent = report.status_line + (stuck
    ? ` — STUCK: no progress for ${stuck.idle_secs} s (since ${stuck.since}); waiting for ${stuck.waiting_for}`
    : "");
  $("fare-accounting-error").hidden = !report.accounting_error;
  $("fare-accounting-error").textContent = report.accounting_error
    ? `accounting-service: ${report.accounting_error}` : "";
  fill($("timeline").tBodies[0], report.timeline.map((entry) => {
    const tr = document.createElement("tr");
    tr.dataset.eventType = entry.event_type;
    tr.append(
      cell(entry.occurred_at),
      cell(entry.event_type),
      cell(entry.topic),
      cell(entry.service),
      cell(entry.detail + (entry.published ? "" : " (in the outbox, not yet published)")),
    );
    return tr;
  }));
  $("fare-json").textContent = JSON.stringify(
    { status: report.status, payment: report.payment, accounting: report.accounting }, null, 2);
}

/** Shows a fare; with `follow`, asks again every second until it has its outcome (2 min). */
async function showFare(fareId, follow) {
  shownFare = fareId;
  const deadline = Date.now() + 120000;
  for (;;) {
    let done = true;
    try {
      const report = await api(`/api/fares/${encodeURIComponent(fareId)}`);
      if (shownFare !== fareId) return;
      renderFare(report);
      done = Boolean(report.outcome);
      say("search-result", done ? "" : "in flight — following…", false);
    } catch (error) {
      if (shownFare !== fareId) return;
      say("search-result", error.message, true);
      if (!follow) $("fare").hidden = true;
      done = !follow;
    }
    if (done || !follow || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (shownFare !== fareId) return;
  }
}

// --- request -------------------------------------------------------------------------------

async function requestFare(event) {
  event.preventDefault();
  $("request-submit").disabled = true;
  say("request-result", "publishing…", false);
  try {
    const answer = await post("/api/fares", {
      customer: $("request-customer").value,
      amount: $("request-amount").value,
      currency: $("request-currency").value,
      marker: $("request-marker").value,
    });
    say("request-result", `requested ${answer.fare_id}: ${answer.detail}`, false);
    $("request-result").dataset.fareId = answer.fare_id;
    $("search-input").value = answer.fare_id;
    showFare(answer.fare_id, true);
  } catch (error) {
    say("request-result", error.message, true);
  } finally {
    $("request-submit").disabled = false;
  }
}

// --- queues --------------------------------------------------------------------------------

const pages = { attention: null, stuck: null };

async function loadAttention(after) {
  const query = after ? `&after=${encodeURIComponent(after)}` : "";
  try {
    const page = await api(`/api/queues/needs-attention?limit=20${query}`);
    fill($("attention").tBodies[0], page.fares.map((f) => {
      const tr = document.createElement("tr");
      tr.append(fareCell(f.fare_id), cell(f.status_line));
      return tr;
    }));
    say("attention-result", page.fares.length ? "" : "none", false);
    pages.attention = page.next;
    $("attention-more").hidden = !page.next;
  } catch (error) {
    say("attention-result", error.message, true);
  }
}

async function loadStuck(after) {
  const query = after ? `&after=${encodeURIComponent(after)}` : "";
  try {
    const page = await api(`/api/queues/stuck?limit=20${query}`);
    if (!page.available) {
      fill($("stuck").tBodies[0], []);
      say("stuck-result", page.reason, false);
      $("stuck-more").hidden = true;
      return;
    }
    fill($("stuck").tBodies[0], page.fares.map((f) => {
      const tr = document.createElement("tr");
      tr.append(fareCell(f.fare_id), cell(f.status), cell(f.since), cell(`${f.idle_secs} s`), cell(f.waiting_for));
      return tr;
    }));
    say("stuck-result", page.fares.length
      ? `no progress for more than ${page.stuck_after_secs} s` : "none", false);
    pages.stuck = page.next;
    $("stuck-more").hidden = !page.next;
  } catch (error) {
    say("stuck-result", error.message, true);
  }
}

// --- dead letters --------------------------------------------------------------------------

let olderThan = null;

async function loadDeadLetters(before) {
  const service = $("dlq-service").value;
  let query = `limit=20&service=${encodeURIComponent(service)}`;
  if (before !== null && before !== undefined) query += `&before=${before}`;
  try {
    const list = await api(`/api/dead-letters?${query}`);
    fill($("dead-letters").tBodies[0], list.dead_letters.map((letter) => {
      const tr = document.createElement("tr");
      tr.dataset.id = letter.id;
      const source = letter.source
        ? `${letter.source.topic}/${letter.source.partition}@${letter.source.offset}` : "-";
      const show = document.createElement("button");
      show.textContent = "show / replay";
      show.addEventListener("click", () => showLetter(letter.id));
      const actions = document.createElement("td");
      actions.appendChild(show);
      tr.append(cell(letter.id), cell(letter.time), cell(source), cell(letter.key),
        cell(letter.replayed ? `yes (${letter.replays.length}×)` : "no"), cell(letter.reason), actions);
      return tr;
    }));
    const more = list.more ? `; ${list.more} older` + (service ? "" : " (choose a service to page)") : "";
    say("dlq-result", `${list.shown} of ${list.total} dead letter(s)${more}`, false);
    olderThan = list.next_before;
    $("dlq-more").hidden = olderThan === null || olderThan === undefined;
  } catch (error) {
    say("dlq-result", error.message, true);
  }
}

async function showLetter(id) {
  $("letter").hidden = false;
  $("letter").dataset.id = id;
  $("letter-title").textContent = `dead letter ${id}`;
  say("replay-result", "", false);
  try {
    const letter = await api(`/api/dead-letters/${encodeURIComponent(id)}`);
    const headers = Object.entries(letter.headers).map(([k, v]) => `  ${k}: ${v}`).join("\n");
    $("letter-details").textContent =
      `reason: ${letter.reason}\nkey: ${letter.key}\nreplayed: ${letter.replayed ? "yes" : "no"}\n` +
      `headers:\n${headers}\npayload:\n${letter.payload_text}`;
  } catch (error) {
    $("letter-details").textContent = error.message;
  }
}

async function replayLetter(event) {
  event.preventDefault();
  const id = $("letter").dataset.id;
  say("replay-result", "replaying…", false);
  try {
    const answer = await post(`/api/dead-letters/${encodeURIComponent(id)}/replay`, {
      payload: $("replay-payload").value,
      force: $("replay-force").checked,
      dry_run: $("replay-dry-run").checked,
    });
    say("replay-result", answer.summary, false);
    loadDeadLetters(null);
  } catch (error) {
    say("replay-result", error.message, true);
  }
}

// --- diagram -------------------------------------------------------------------------------

async function loadDiagram() {
  try {
    const diagram = await api("/api/diagram");
    $("diagram").innerHTML = diagram.svg; // generated by the console from its own step table
    fill($("steps").tBodies[0], diagram.steps.map((step) => {
      const tr = document.createElement("tr");
      tr.append(cell(step.on), cell(step.service), cell(step.does), cell(step.emits.join(", ")));
      return tr;
    }));
    $("mermaid").textContent = diagram.mermaid;
  } catch (error) {
    $("diagram").textContent = error.message;
  }
}

// --- start ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("request-form").addEventListener("submit", requestFare);
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showFare($("search-input").value.trim(), false);
  });
  $("attention-more").addEventListener("click", () => loadAttention(pages.attention));
  $("stuck-more").addEventListener("click", () => loadStuck(pages.stuck));
  $("dlq-refresh").addEventListener("click", () => loadDeadLetters(null));
  $("dlq-service").addEventListener("change", () => loadDeadLetters(null));
  $("dlq-more").addEventListener("click", () => loadDeadLetters(olderThan));
  $("replay-form").addEventListener("submit", replayLetter);
  refreshOverview();
  setInterval(refreshOverview, 1000);
  loadAttention(null);
  loadStuck(null);
  loadDeadLetters(null);
  setInterval(() => {
    loadAttention(null);
    loadStuck(null);
    loadDeadLetters(null);
  }, 10000);
  loadDiagram();
});
