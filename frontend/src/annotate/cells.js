// Cell stage: outline cells (by hand or with SAM), give each a class with one key, see the
// counts per class. Class colours and hotkeys come from the project's label schema.
import { api } from "./api.js";
import { h, perFrame } from "./dom.js";
import { PolygonTool } from "./polygons.js";
import { SamAssist } from "./sam.js";

const UNKNOWN = "#9ca3af";

export class CellStage {
  constructor(app) {
    this.app = app;
    this.classes = [];
    this.byKey = new Map();
    this.current = null; // the class given to new outlines
    this.tool = new PolygonTool({
      ...app.parts,
      readOnly: () => app.readOnly(),
      colourOf: (item) => this.colourOf(item.label),
      newLabel: () => this.current?.key ?? "",
    });
    this.sam = new SamAssist(app, this.tool);
    this.palette = h("ul", { class: "palette", "data-testid": "palette" });
    this.selection = h("p", { class: "selection", "data-testid": "selection" });
    this.samButton = h("button", { type: "button", "data-testid": "sam-toggle", onclick: () => this.sam.toggle() }, "SAM assist");
    this.samNote = h("span", { class: "muted", "data-testid": "sam-note" });
    this.renderSoon = perFrame(() => this.render());
  }

  colourOf(label) {
    return this.byKey.get(label)?.colour ?? UNKNOWN;
  }

  shapeOf(item) {
    const colour = this.colourOf(item.label);
    return { stroke: colour, fill: colour, fillAlpha: item.own ? 0.25 : 0.1, dash: !item.own };
  }

  describe(row) {
    return `${this.byKey.get(row.label)?.name ?? row.label}, outline of ${row.geometry.coordinates[0].length - 1} vertices`;
  }

  async load() {
    this.classes = await api(`/api/projects/${this.app.ctx.projectId}/label-classes/`);
    this.byKey = new Map(this.classes.map((c) => [c.key, c]));
    this.current = this.classes.find((c) => !c.retired) ?? null;
    await this.sam.init();
  }

  mount(panel) {
    const { keys, store, editor } = this.app.parts;
    const draw = h("button", { type: "button", "data-testid": "tool-draw", onclick: () => this.tool.startDraw() }, "Draw cell (d)");
    const del = h("button", { type: "button", "data-testid": "tool-delete", onclick: () => this.tool.deleteSelected() }, "Delete (x)");
    panel.append(
      h("h2", {}, "Cells"),
      h("p", { class: "muted" }, "Draw with d (click vertices, Enter closes), or click a cell in SAM mode. A class key labels the selected cell, or sets the class of the next outline."),
      h("p", { class: "tools" }, draw, " ", del, " ", this.samButton, " ", this.samNote),
      this.selection,
      this.palette,
      h("p", {}, h("a", { href: `/slides/${this.app.ctx.slideId}/gallery/` }, "Open the cell gallery →")),
    );
    keys.bind("d", () => this.tool.startDraw());
    keys.bind(["x", "Delete", "Backspace"], () => (this.tool.mode === "draw" ? editor.removeLastVertex() : this.tool.deleteSelected()));
    keys.bind("Enter", () => this.sam.accept() || this.tool.finish());
    keys.bind("Escape", () => this.sam.reject() || this.tool.cancel());
    for (const cls of this.classes) {
      if (!cls.retired) keys.bind(cls.hotkey, () => this.classify(cls));
    }
    this.tool.addEventListener("select", () => this.renderSoon());
    this.sam.addEventListener("change", () => this.renderSam());
    store.addEventListener("change", () => this.renderSoon());
    store.addEventListener("reset", () => this.renderSoon());
    this.render();
    this.renderSam();
  }

  /** A class key: label the selected own cell, else make it the class of the next outline. */
  classify(cls) {
    if (this.tool.relabel(cls.key)) return;
    this.current = cls;
    if (this.tool.mode === "draw") this.app.parts.editor.startDrawing(cls.colour);
    this.renderSoon();
  }

  render() {
    const counts = new Map();
    for (const item of this.app.parts.store.items.values()) {
      if (item.own) counts.set(item.label, (counts.get(item.label) ?? 0) + 1);
    }
    const visible = this.classes.filter((c) => !c.retired || counts.get(c.key));
    this.palette.replaceChildren(...visible.map((c) => this.paletteEntry(c, counts.get(c.key) ?? 0)));
    const item = this.tool.selectedItem;
    this.selection.dataset.label = item?.label ?? "";
    this.selection.dataset.id = item ? String(item.id) : "";
    this.selection.textContent = item
      ? `Selected: ${this.byKey.get(item.label)?.name ?? (item.label || "unlabelled")}${item.own ? "" : " (another annotator's; read-only)"}`
      : `Next outline: ${this.current?.name ?? "—"}`;
  }

  paletteEntry(cls, count) {
    const selected = this.tool.selectedItem;
    const active = selected ? selected.label === cls.key : this.current?.key === cls.key;
    return h(
      "li",
      {
        class: `${active ? "active" : ""}${cls.counted ? "" : " not-counted"}`,
        "data-testid": "class-count",
        dataset: { key: cls.key, count },
        onclick: () => this.classify(cls),
        title: cls.counted ? "counted in the DCC" : "labelled, not counted",
      },
      h("kbd", {}, cls.hotkey),
      h("span", { class: "swatch", style: { background: cls.colour } }),
      h("span", { class: "name" }, cls.name, cls.retired ? " (retired)" : ""),
      h("span", { class: "count" }, String(count)),
    );
  }

  renderSam() {
    const sam = this.sam;
    this.samButton.disabled = !sam.installed;
    this.samButton.textContent = sam.installed ? (sam.active ? "SAM assist: on" : "SAM assist") : "SAM: model not installed";
    this.samButton.classList.toggle("active", sam.active);
    this.samButton.title = sam.installed ? `Click a cell to outline it with ${sam.model}` : "An admin must put an official SAM checkpoint in the model folder";
    this.samNote.textContent = sam.message;
  }
}
