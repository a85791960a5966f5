// The report's review gallery, sign and amend forms. Crops come from the annotation crop API
// (lazily, as the browser scrolls to them) with the cell outline drawn over them; a class
// hotkey reclassifies the selected cell, Enter confirms it, arrows move. The DCC table is
// redrawn from the document every write returns, so it updates as you go.
const report = document.getElementById("report");
const run = report.dataset.run;
const base = `/api/analyses/${run}/report/`;
const review = document.getElementById("review");

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function call(url, method = "GET", body = undefined) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = csrfToken();
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, {
    method, headers, credentials: "same-origin", body: body && JSON.stringify(body),
  });
  return { ok: response.ok, status: response.status, body: await response.json() };
}

function pct(v) { return v === null ? "—" : (100 * v).toFixed(1); }

function showDocument(doc) {
  for (const row of doc.dcc.rows) {
    const tr = report.querySelector(`tr[data-key="${row.key}"]`);
    if (!tr) continue;
    tr.querySelector(".count").textContent = row.count;
    tr.querySelector(".pct").textContent = pct(row.proportion);
    tr.querySelector(".ci").textContent = `${pct(row.ci_low)}–${pct(row.ci_high)}`;
  }
  report.querySelector(".total").textContent = doc.dcc.total_counted;
  report.querySelector(".me").textContent = doc.dcc.me_ratio === null ? "—" : doc.dcc.me_ratio.toFixed(2);
  report.querySelector(".blast").textContent =
    (doc.dcc.blast_percentage === null ? "—" : doc.dcc.blast_percentage.toFixed(1)) + " %";
  showRemaining(doc.review.remaining);
}

function showRemaining(n) {
  if (review) review.querySelector(".remaining").textContent = n;
  const alert = report.querySelector('[data-kind="review_required"]');
  if (alert && n === 0) alert.remove();
  else if (alert) alert.firstChild.textContent = `${n} cells need review (top probability < 0.60) `;
}

if (review) {
  const hotkeys = JSON.parse(review.dataset.hotkeys);
  const byKey = Object.fromEntries(hotkeys.map((h) => [h.hotkey, h]));
  const names = Object.fromEntries(hotkeys.map((h) => [h.key, h.name]));
  const gallery = review.querySelector(".gallery");
  const error = review.querySelector(".review-error");
  let state = { group: null, page: 1, pages: 1, cells: [], selected: 0 };

  async function load(group, page) {
    const params = new URLSearchParams({ page });
    if (group) params.set("group", group);
    const { body } = await call(`${base}cells/?${params}`);
    state = { group: body.group, page: body.page, pages: body.pages, cells: body.cells, selected: 0 };
    drawGroups(body.groups);
    drawCells();
  }

  function drawGroups(groups) {
    const nav = review.querySelector(".groups");
    nav.replaceChildren(...groups.map((g) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.group = g.key;
      b.className = g.key === state.group ? "active" : "";
      b.textContent = `${g.name} (${g.count}${g.remaining !== null ? `, ${g.remaining} left` : ""})`;
      b.addEventListener("click", () => load(g.key, 1));
      return b;
    }));
  }

  function figure(cell, index) {
    const f = document.createElement("figure");
    f.dataset.id = cell.id;
    f.className = cell.looked_at ? "looked" : "";
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = `cell ${cell.id}`;
    img.src = `/api/annotations/${cell.id}/crop.jpeg?size=128&v=${cell.version}`;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 1 1");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
    line.setAttribute("points", cell.outline.map((p) => p.join(",")).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#00e5ff");
    line.setAttribute("stroke-width", "0.012");
    svg.append(line);
    const cap = document.createElement("figcaption");
    cap.textContent = `${names[cell.label] || cell.label || "unclassified"} · ${cell.confidence.toFixed(2)}`;
    f.append(img, svg, cap);
    f.addEventListener("click", () => { state.selected = index; select(); });
    return f;
  }

  function drawCells() {
    gallery.replaceChildren(...state.cells.map(figure));
    review.querySelector(".page").textContent = `page ${state.page} of ${state.pages}`;
    select();
  }

  function select() {
    gallery.querySelectorAll("figure").forEach((f, i) => f.classList.toggle("selected", i === state.selected));
    gallery.children[state.selected]?.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const next = state.selected + step;
    if (next >= 0 && next < state.cells.length) { state.selected = next; select(); }
  }

  async function act(cell, hotkey) {
    error.textContent = "";
    const url = `${base}cells/${cell.id}/${hotkey ? "reclassify" : "confirm"}/`;
    const payload = hotkey ? { label: byKey[hotkey].key, version: cell.version } : {};
    const { ok, body } = await call(url, "POST", payload);
    if (!ok) { error.textContent = body.detail; return; }
    if (hotkey) {
      Object.assign(cell, body.cell);
      showDocument(body.document);
    } else {
      showRemaining(body.review.remaining);
    }
    cell.looked_at = hotkey ? "reclassified" : "confirmed";
    const f = gallery.children[state.selected];
    f.replaceWith(figure(cell, state.selected));
    move(1);
    select();
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    const cell = state.cells[state.selected];
    if (event.key === "ArrowRight" || event.key === "ArrowDown") { move(1); event.preventDefault(); }
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") { move(-1); event.preventDefault(); }
    else if (event.key === "Enter" && cell) { act(cell, null); event.preventDefault(); }
    else if (byKey[event.key.toLowerCase()] && cell) { act(cell, event.key.toLowerCase()); event.preventDefault(); }
  });
  review.querySelector(".prev").addEventListener("click", () => state.page > 1 && load(state.group, state.page - 1));
  review.querySelector(".next").addEventListener("click", () => state.page < state.pages && load(state.group, state.page + 1));
  load(null, 1);
}

const signForm = document.querySelector(".sign-form");
signForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const { ok, body } = await call(`${base}sign/`, "POST", { password: signForm.password.value });
  if (ok) window.location.reload();
  else signForm.querySelector(".sign-error").textContent = body.detail;
});

const amendForm = document.querySelector(".amend-form");
amendForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const { ok, body } = await call(`${base}amend/`, "POST", { reason: amendForm.reason.value });
  if (ok) window.location.reload();
  else amendForm.querySelector(".amend-error").textContent = body.detail;
});
