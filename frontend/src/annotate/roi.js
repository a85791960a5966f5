// ROI stage: the region fit for counting (the smear's body-tail junction), one or more polygons
// per slide, each listed with its area in mm² when the slide's µm/px is known.
import { h, perFrame } from "./dom.js";
import { areaPx, formatArea } from "./geometry.js";
import { PolygonTool } from "./polygons.js";

const OWN = "#6d28d9";
const OTHER = "#0e7490";

export class RoiStage {
  constructor(app) {
    this.app = app;
    this.tool = new PolygonTool({
      ...app.parts,
      readOnly: () => app.readOnly(),
      colourOf: (item) => (item.own ? OWN : OTHER),
      newLabel: () => "",
    });
    this.list = h("ol", { class: "shape-list", "data-testid": "roi-list" });
    this.total = h("p", { "data-testid": "roi-total" });
    this.renderSoon = perFrame(() => this.render());
  }

  shapeOf(item) {
    const colour = item.own ? OWN : OTHER;
    return { stroke: colour, fill: colour, fillAlpha: 0.08, dash: !item.own };
  }

  describe(row) {
    return `ROI of ${row.geometry.coordinates[0].length - 1} vertices`;
  }

  mount(panel) {
    const { keys } = this.app.parts;
    const draw = h("button", { type: "button", "data-testid": "tool-draw", onclick: () => this.tool.startDraw() }, "Draw ROI (d)");
    const del = h("button", { type: "button", "data-testid": "tool-delete", onclick: () => this.tool.deleteSelected() }, "Delete (x)");
    panel.append(
      h("h2", {}, "Region of interest"),
      h("p", { class: "muted" }, "Click vertices; click the first vertex, press Enter or double-click to close. Drag a vertex of the selected ROI to move it."),
      h("p", { class: "tools" }, draw, " ", del),
      this.total,
      this.list,
    );
    keys.bind("d", () => this.tool.startDraw());
    keys.bind(["x", "Delete", "Backspace"], () => (this.tool.mode === "draw" ? this.app.parts.editor.removeLastVertex() : this.tool.deleteSelected()));
    keys.bind("Enter", () => this.tool.finish());
    keys.bind("Escape", () => this.tool.cancel());
    this.tool.addEventListener("select", () => this.renderSoon());
    this.app.parts.store.addEventListener("change", () => this.renderSoon());
    this.app.parts.store.addEventListener("reset", () => this.renderSoon());
    this.render();
  }

  render() {
    const { store } = this.app.parts;
    const mpp = this.app.ctx.mpp;
    const items = store.all().sort((a, b) => Number(b.own) - Number(a.own));
    let ownArea = 0;
    this.list.replaceChildren(
      ...items.map((item) => {
        const area = areaPx(item.ring);
        if (item.own) ownArea += area;
        const who = item.own ? "yours" : `annotator ${item.annotator}`;
        return h(
          "li",
          {
            class: item.id === this.tool.selected ? "selected" : "",
            "data-testid": "roi-item",
            dataset: { id: item.id, own: item.own ? "1" : "0" },
            onclick: () => this.app.focus(item),
          },
          h("span", { "data-testid": "roi-area" }, formatArea(area, mpp)),
          h("span", { class: "muted" }, ` · ${item.ring.length} vertices · ${who}`),
        );
      }),
    );
    const count = items.filter((i) => i.own).length;
    this.total.textContent = `${count} ROI${count === 1 ? "" : "s"} of yours, ${formatArea(ownArea, mpp)} in all`;
  }
}
