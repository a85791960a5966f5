// The adjudication panel: walks the disagreements one at a time, moves the slide viewer to
// each, draws both annotators' outlines (and the consensus) over it, and posts the reviewer's
// choice. Server data comes from the panel's data-* URLs; the viewer from the #viewer element
// (set up by the app's viewer bundle, loaded first).

const COLOURS = { a: "#1f77b4", b: "#ff7f0e", c: "#2ca02c" };
const KIND_TEXT = {
  cell_only_a: "Cell only A drew",
  cell_only_b: "Cell only B drew",
  cell_class: "Matched cell, classes differ",
  toi_label: "Tile labelled differently",
  toi_only_a: "Tile only A labelled",
  toi_only_b: "Tile only B labelled",
  roi: "The ROIs differ",
};
const SVG_NS = "http://www.w3.org/2000/svg";

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function fetchJson(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    ...options,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

class Adjudicator {
  constructor(panel, viewer) {
    this.panel = panel;
    this.viewer = viewer;
    this.state = null;
    this.index = 0;
    this.overlay = null;
    this.$ = (id) => panel.querySelector(`#${id}`);
  }

  async load() {
    this.state = await fetchJson(this.panel.dataset.apiUrl);
    if (!this.state.filled) {
      // The fill job is still running (jobs.js reloads the page when it ends) or failed.
      this.$("progress-text").textContent = "waiting for the consensus to be filled";
      return;
    }
    this.classNames = Object.fromEntries(this.state.classes.map((c) => [c.key, c.name]));
    const first = this.state.items.findIndex((item) => !item.decision);
    this.renderList();
    this.show(first >= 0 ? first : 0);
    this.panel.dataset.loaded = "true";
  }

  labelText(label) {
    if (!label) return "unlabelled";
    return this.classNames[label] || label;
  }

  renderProgress() {
    const { decided, total } = this.state.progress;
    this.$("progress").max = Math.max(total, 1);
    this.$("progress").value = decided;
    this.$("progress-text").textContent = `${decided} of ${total} decided`;
  }

  renderList() {
    const list = this.$("items");
    list.replaceChildren(
      ...this.state.items.map((item, i) => {
        const li = document.createElement("li");
        li.dataset.key = item.key;
        li.textContent = `${KIND_TEXT[item.kind] || item.kind}${item.decision ? ` → ${item.decision.choice}` : ""}`;
        li.classList.toggle("decided", Boolean(item.decision));
        li.classList.toggle("active", i === this.index);
        li.addEventListener("click", () => this.show(i));
        return li;
      }),
    );
    this.renderProgress();
  }

  show(index) {
    const items = this.state.items;
    const current = this.$("current");
    if (!items.length) {
      current.textContent = "No disagreements: the consensus holds everything both agreed on.";
      return;
    }
    this.index = Math.max(0, Math.min(index, items.length - 1));
    const item = items[this.index];
    current.dataset.key = item.key;
    current.replaceChildren(
      line(`${this.index + 1} / ${items.length}: ${KIND_TEXT[item.kind] || item.kind}`, "strong"),
      line(`A: ${item.a ? this.labelText(item.a.label) : "nothing here"}`),
      line(`B: ${item.b ? this.labelText(item.b.label) : "nothing here"}`),
      line(item.decision ? `Decided: ${item.decision.choice}${item.decision.label ? ` (${this.labelText(item.decision.label)})` : ""}` : "Undecided", "em"),
    );
    this.renderEdit(item);
    this.renderList();
    this.jump(item);
  }

  renderEdit(item) {
    const edit = this.$("edit");
    edit.replaceChildren();
    if (item.kind === "roi") {
      edit.append(
        button("Edit: A ∪ B", () => this.decide("edit", { combine: "union" })),
        button("Edit: A ∩ B", () => this.decide("edit", { combine: "intersection" })),
      );
    } else if (item.kind.startsWith("toi")) {
      edit.append(
        button("Edit: TOI", () => this.decide("edit", { label: "toi" })),
        button("Edit: not TOI", () => this.decide("edit", { label: "non_toi" })),
      );
    } else {
      const select = document.createElement("select");
      select.id = "edit-label";
      for (const c of this.state.classes.filter((k) => !k.retired)) {
        select.append(new Option(c.name, c.key));
      }
      const preset = (item.a && item.a.label) || (item.b && item.b.label);
      if (preset) select.value = preset;
      edit.append(select, button("Edit: use this class", () => this.decide("edit", { label: select.value }), "edit-apply"));
    }
  }

  async decide(choice, extra = {}) {
    const item = this.state.items[this.index];
    if (!item) return;
    this.$("message").textContent = "saving…";
    try {
      const body = await fetchJson(this.panel.dataset.decisionsUrl, {
        method: "POST",
        body: JSON.stringify({ key: item.key, choice, ...extra }),
      });
      item.decision = body.decision;
      this.state.progress = body.progress;
      this.$("message").textContent = `saved: ${choice}`;
      this.next(true);
    } catch (error) {
      this.$("message").textContent = `not saved: ${error.message}`;
    }
  }

  next(undecidedOnly) {
    const items = this.state.items;
    for (let step = 1; step <= items.length; step++) {
      const i = (this.index + step) % items.length;
      if (!undecidedOnly || !items[i].decision) return this.show(i);
    }
    this.show(this.index); // everything decided: stay, refreshed
  }

  jump(item) {
    if (!this.viewer) return;
    const go = () => {
      const [x0, y0, x1, y1] = item.bbox;
      const pad = Math.max(x1 - x0, y1 - y0, 200) * 0.75;
      const rect = this.viewer.viewport.imageToViewportRectangle(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad);
      this.viewer.viewport.fitBounds(rect);
      this.drawAround([x0 - pad, y0 - pad, x1 + pad, y1 + pad]);
    };
    if (this.viewer.world.getItemCount()) go();
    else this.viewer.addOnceHandler("open", go);
  }

  async drawAround(bbox) {
    const url = `${this.panel.dataset.annotationsUrl}&bbox=${bbox.map((v) => Math.round(v)).join(",")}`;
    const annotations = await fetchJson(url).catch(() => []);
    const sets = { [this.state.set_a.id]: "a", [this.state.set_b.id]: "b", [this.state.consensus]: "c" };
    const [x0, y0, x1, y1] = bbox;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `${x0} ${y0} ${x1 - x0} ${y1 - y0}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.classList.add("adj-overlay");
    for (const a of annotations) {
      const side = sets[a.set];
      if (!side) continue;
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", a.geometry.coordinates.map((ring) => `M${ring.map((p) => p.join(" ")).join("L")}Z`).join(""));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", COLOURS[side]);
      path.setAttribute("stroke-width", side === "c" ? "3" : "2");
      path.setAttribute("vector-effect", "non-scaling-stroke");
      if (side === "c") path.setAttribute("stroke-dasharray", "6 4");
      svg.append(path);
    }
    if (this.overlay) this.viewer.removeOverlay(this.overlay);
    this.overlay = svg;
    const rect = this.viewer.viewport.imageToViewportRectangle(x0, y0, x1 - x0, y1 - y0);
    this.viewer.addOverlay({ element: svg, location: rect });
  }

  bind() {
    this.panel.querySelectorAll("button[data-choice]").forEach((b) => b.addEventListener("click", () => this.decide(b.dataset.choice)));
    this.$("prev").addEventListener("click", () => this.show(this.index - 1));
    this.$("next").addEventListener("click", () => this.show(this.index + 1));
    this.$("next-open").addEventListener("click", () => this.next(true));
    document.addEventListener("keydown", (event) => {
      if (event.target.closest("input, select, textarea")) return;
      if (event.key === "a" || event.key === "b") this.decide(event.key);
      else if (event.key === "n" || event.key === "ArrowRight") this.show(this.index + 1);
      else if (event.key === "p" || event.key === "ArrowLeft") this.show(this.index - 1);
    });
  }
}

function line(text, tag) {
  const div = document.createElement("div");
  if (!tag) {
    div.textContent = text;
    return div;
  }
  const inner = document.createElement(tag);
  inner.textContent = text;
  div.append(inner);
  return div;
}

function button(text, onClick, id) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (id) b.id = id;
  b.addEventListener("click", onClick);
  return b;
}

const panel = document.getElementById("adjudication");
if (panel && panel.dataset.apiUrl) {
  const viewerEl = document.getElementById("viewer");
  const adjudicator = new Adjudicator(panel, viewerEl ? viewerEl.viewer || null : null);
  adjudicator.bind();
  adjudicator.load().catch((error) => {
    panel.querySelector("#message").textContent = `could not load the disagreements: ${error.message}`;
  });
  window.bmadccAdjudicator = adjudicator;
}
