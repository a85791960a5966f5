// The report's review gallery, sign and amend forms. A gallery page's 200 crops arrive as one
// sprite sheet (outlines drawn by the server), and later pages load as the gallery scrolls; a
// class hotkey reclassifies the selected cell, Enter confirms it, arrows move, and selecting a
// cell tells the slide viewer to jump to it. The DCC table is redrawn from the document every
// write returns, so it updates as you go.
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
  const more = review.querySelector(".next");
  const error = review.querySelector(".review-error");
  // The cells of every page loaded so far, in order: later pages are appended as the last
  // crop scrolls into view (or "Load more" is pressed, or the arrows run past the end).
  let state = { group: null, page: 0, pages: 1, cells: [], selected: 0, loading: null };

  async function load(group) {
    state = { group, page: 0, pages: 1, cells: [], selected: 0, loading: null };
    gallery.replaceChildren();
    await loadNext();
    select();
  }

  function loadNext() {
    if (state.loading || state.page >= state.pages) return state.loading;
    const params = new URLSearchParams({ page: state.page + 1 });
    if (state.group) params.set("group", state.group);
    state.loading = call(`${base}cells/?${params}`).then(({ body }) => {
      state.loading = null;
      if (state.group && body.group !== state.group) return;
      state.group = body.group;
      state.page = body.page;
      state.pages = body.pages;
      params.set("group", body.group ?? "");
      params.set("v", body.sprite.key);
      // One JPEG holds the page's crops (outlines drawn); each figure shows its square of it.
      const sprite = `${base}cells/sprite.jpeg?${params}`;
      for (const cell of body.cells) cell.sprite = sprite;
      const first = state.cells.length;
      state.cells.push(...body.cells);
      gallery.append(...body.cells.map((cell, i) => figure(cell, first + i)));
      drawGroups(body.groups);
      showPages();
      watchEnd();
    });
    return state.loading;
  }

  function showPages() {
    review.querySelector(".page").textContent = `${state.cells.length} cells shown, page ${state.page} of ${state.pages}`;
    more.hidden = state.page >= state.pages;
  }

  const endWatcher = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadNext();
  }, { rootMargin: "400px" });

  function watchEnd() {
    endWatcher.disconnect();
    if (gallery.lastElementChild && state.page < state.pages) endWatcher.observe(gallery.lastElementChild);
  }

  function drawGroups(groups) {
    const nav = review.querySelector(".groups");
    nav.replaceChildren(...groups.map((g) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.group = g.key;
      b.className = g.key === state.group ? "active" : "";
      b.textContent = `${g.name} (${g.count}${g.remaining !== null ? `, ${g.remaining} left` : ""})`;
      b.addEventListener("click", () => load(g.key));
      return b;
    }));
  }

  function figure(cell, index) {
    const f = document.createElement("figure");
    f.dataset.id = cell.id;
    f.className = cell.looked_at ? "looked" : "";
    const img = document.createElement("img");
    img.alt = `cell ${cell.id}`;
    img.src = cell.sprite;
    img.style.objectPosition = `${-cell.at[0]}px ${-cell.at[1]}px`;
    const cap = document.createElement("figcaption");
    cap.textContent = `${names[cell.label] || cell.label || "unclassified"} · ${cell.confidence.toFixed(2)}`;
    f.append(img, cap);
    f.addEventListener("click", () => { state.selected = index; select(); });
    return f;
  }

  function select() {
    gallery.querySelectorAll("figure.selected").forEach((f) => f.classList.remove("selected"));
    const f = gallery.children[state.selected];
    if (!f) return;
    f.classList.add("selected");
    f.scrollIntoView({ block: "nearest" });
    // The slide viewer (report_viewer.js) jumps to the selected cell.
    const cell = state.cells[state.selected];
    review.dataset.selected = cell.id;
    review.dataset.selectedBox = JSON.stringify(cell.box);
    document.dispatchEvent(new CustomEvent("report:select-cell", { detail: { id: cell.id, box: cell.box } }));
  }

  async function move(step) {
    const next = state.selected + step;
    if (next >= state.cells.length && state.page < state.pages) await loadNext();
    if (next >= 0 && next < state.cells.length) { state.selected = next; select(); }
  }

  async function act(cell, hotkey) {
    error.textContent = "";
    const url = `${base}cells/${cell.id}/${hotkey ? "reclassify" : "confirm"}/`;
    const payload = hotkey ? { label: byKey[hotkey].key, version: cell.version } : {};
    const { ok, body } = await call(url, "POST", payload);
    if (!ok) { error.textContent = body.detail; return; }
    if (hotkey) {
      const { sprite, at } = cell;
      Object.assign(cell, body.cell, { sprite, at });
      showDocument(body.document);
    } else {
      showRemaining(body.review.remaining);
    }
    cell.looked_at = hotkey ? "reclassified" : "confirmed";
    const index = state.cells.indexOf(cell);
    gallery.children[index].replaceWith(figure(cell, index));
    watchEnd();
    if (index === state.selected) await move(1);
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
  more.addEventListener("click", () => loadNext());
  load(null);
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
