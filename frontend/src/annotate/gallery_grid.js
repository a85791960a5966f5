// The cell gallery: a crop of every visible cell, filterable by class. The focused crop takes a
// class from one key and focus moves on, so outlined cells can be classified quickly without
// the viewer. Edits go through the same save queue as the workspace (versions, 409, retries).
import { api } from "./api.js";
import { h, perFrame } from "./dom.js";
import { Keymap } from "./keyboard.js";
import { SaveStatus } from "./status.js";
import { AnnotationStore } from "./store.js";
import { SaveQueue } from "./sync.js";

const PAGE = 240;
const CROP_PX = 128;

export class CellGallery {
  constructor(root) {
    this.root = root;
    const d = root.dataset;
    this.ctx = { slideId: Number(d.slideId), userId: Number(d.userId), projectId: Number(d.projectId) };
    this.store = new AnnotationStore(this.ctx.userId);
    this.queue = new SaveQueue({
      storageKey: `bmadcc:unsaved-gallery:${this.ctx.userId}:${this.ctx.slideId}`,
      store: this.store,
      ensureSet: () => Promise.reject(new Error("the gallery creates no cells")),
    });
    this.classes = [];
    this.byKey = new Map();
    this.filter = "";
    this.shown = PAGE;
    this.focusId = null;
    this.keys = new Keymap();
    this.grid = h("div", { class: "gallery-grid", "data-testid": "gallery-grid" });
    this.filterSelect = h("select", { "data-testid": "gallery-filter", "aria-label": "class filter", onchange: () => this.setFilter(this.filterSelect.value) });
    this.summary = h("p", { class: "muted", "data-testid": "gallery-summary" });
    this.more = h("button", { type: "button", onclick: () => this.showMore() }, "Show more");
    this.renderSoon = perFrame(() => this.render());
  }

  async start() {
    this.root.dataset.state = "loading";
    const [classes, rows] = await Promise.all([
      api(`/api/projects/${this.ctx.projectId}/label-classes/`),
      api(`/api/annotations/?slide=${this.ctx.slideId}&stage=cell`),
    ]);
    this.classes = classes;
    this.byKey = new Map(classes.map((c) => [c.key, c]));
    this.store.load(rows);
    this.queue.restore();
    new SaveStatus(this.root.querySelector("[data-panel=save]"), this.queue, (row) => this.nameOf(row.label));
    this.root.querySelector("[data-panel=controls]").append(h("label", {}, "Class ", this.filterSelect), this.summary);
    this.root.querySelector("[data-panel=grid]").append(this.grid, this.more);
    this.bindKeys();
    this.store.addEventListener("change", () => this.renderSoon());
    this.render();
    this.root.dataset.state = "ready";
    window.bmadccGallery = this;
  }

  nameOf(key) {
    return this.byKey.get(key)?.name ?? (key || "unlabelled");
  }

  bindKeys() {
    this.keys.bind(["ArrowRight", "ArrowDown", "n"], () => this.move(1));
    this.keys.bind(["ArrowLeft", "ArrowUp", "p"], () => this.move(-1));
    for (const cls of this.classes) {
      if (!cls.retired) this.keys.bind(cls.hotkey, () => this.classify(cls.key));
    }
  }

  /** The cells that pass the filter, in a stable order (by id). */
  visible() {
    const items = this.store.all().sort((a, b) => String(a.id).localeCompare(String(b.id), "en", { numeric: true }));
    return this.filter ? items.filter((i) => i.label === this.filter) : items;
  }

  setFilter(key) {
    this.filter = key;
    this.shown = PAGE;
    this.focusId = null;
    this.render();
  }

  showMore() {
    this.shown += PAGE;
    this.render();
  }

  move(step) {
    const items = this.visible().slice(0, this.shown);
    if (!items.length) return;
    const at = items.findIndex((i) => i.id === this.focusId);
    const next = at < 0 ? 0 : Math.max(0, Math.min(items.length - 1, at + step));
    this.setFocus(items[next].id);
  }

  setFocus(id) {
    this.focusId = id;
    for (const node of this.grid.querySelectorAll(".crop.focused")) node.classList.remove("focused");
    const node = this.grid.querySelector(`[data-id="${id}"]`);
    if (node) {
      node.classList.add("focused");
      node.scrollIntoView({ block: "nearest" });
    }
  }

  /** Give the focused own cell `key`, then focus the next crop. */
  classify(key) {
    const item = this.store.get(this.focusId);
    if (!item || !item.own) return;
    const wasFiltered = Boolean(this.filter) && item.label === this.filter;
    const items = this.visible();
    const at = items.findIndex((i) => i.id === item.id);
    if (item.label !== key) {
      this.store.patch(item.id, { label: key });
      this.queue.update(item.id, { label: key }, { label: key });
    }
    // With a class filter the relabelled crop leaves the list; the next one takes its place.
    const next = wasFiltered && key !== this.filter ? items[at + 1] : items[at + 1] ?? item;
    this.render();
    if (next) this.setFocus(next.id);
  }

  render() {
    this.renderFilter();
    const items = this.visible();
    const page = items.slice(0, this.shown);
    this.grid.replaceChildren(...page.map((item) => this.card(item)));
    this.more.hidden = items.length <= this.shown;
    this.summary.textContent = `${items.length} cell${items.length === 1 ? "" : "s"}${this.filter ? ` labelled ${this.nameOf(this.filter)}` : ""}; ← → move, a class key relabels the focused cell.`;
    if (this.focusId !== null) this.setFocus(this.focusId);
  }

  renderFilter() {
    const counts = new Map();
    for (const item of this.store.items.values()) counts.set(item.label, (counts.get(item.label) ?? 0) + 1);
    const options = [h("option", { value: "" }, `All classes (${this.store.items.size})`)];
    for (const cls of this.classes) {
      const n = counts.get(cls.key) ?? 0;
      if (n || !cls.retired) options.push(h("option", { value: cls.key, selected: cls.key === this.filter }, `${cls.name} (${n})`));
    }
    this.filterSelect.replaceChildren(...options);
    this.filterSelect.value = this.filter;
  }

  card(item) {
    const cls = this.byKey.get(item.label);
    return h(
      "figure",
      {
        class: `crop${item.own ? "" : " other"}`,
        tabindex: "-1",
        "data-testid": "crop",
        dataset: { id: item.id, label: item.label },
        style: { borderColor: cls?.colour ?? "#9ca3af" },
        onclick: () => this.setFocus(item.id),
      },
      h("img", {
        src: `/api/annotations/${item.id}/crop.jpeg?size=${CROP_PX}&v=${item.version}`,
        alt: `cell ${item.id}`,
        loading: "lazy",
        width: CROP_PX,
        height: CROP_PX,
      }),
      h("figcaption", {}, h("kbd", {}, cls?.hotkey ?? "?"), " ", this.nameOf(item.label), item.own ? "" : " · other annotator"),
    );
  }
}
