// TOI stage: walk the caller's tile grid (tiles under their own ROI, or the whole slide) one
// tile at a time; the view jumps to each tile and one key marks it TOI or non-TOI, then moves
// on. Each tile's label is drawn on the grid; progress counts are kept in the panel.
import { api } from "./api.js";
import { h, perFrame } from "./dom.js";
import { flatten, rectRing } from "./geometry.js";

const LABELS = {
  toi: { name: "TOI", colour: "#047857" },
  non_toi: { name: "non-TOI", colour: "#b91c1c" },
};
const UNLABELLED = "#64748b";

export class ToiStage {
  constructor(app) {
    this.app = app;
    this.tiles = [];
    this.index = 0;
    this.tileSize = 0;
    this.restricted = false;
    this.progress = h("p", { class: "toi-progress", "data-testid": "toi-progress" });
    this.current = h("p", { class: "toi-current", "data-testid": "toi-current" });
    this.renderSoon = perFrame(() => this.render());
  }

  /** Own TOI annotations are drawn as grid tiles; others' (when unblinded) dashed. */
  shapeOf(item) {
    if (item.own) return null;
    const colour = LABELS[item.label]?.colour ?? UNLABELLED;
    return { stroke: colour, fill: null, dash: true };
  }

  describe(row) {
    return `tile (${row.tile_col}, ${row.tile_row}) marked ${LABELS[row.label]?.name ?? row.label}`;
  }

  async load() {
    const grid = await api(`/api/slides/${this.app.ctx.slideId}/toi-grid/`);
    this.tiles = grid.tiles;
    this.tileSize = grid.tile_size;
    this.restricted = grid.restricted_to_roi;
    const first = this.tiles.findIndex((t) => !this.labelOf(t));
    this.index = Math.max(0, first);
  }

  mount(panel) {
    const { keys, store } = this.app.parts;
    const button = (label, testid, action) => h("button", { type: "button", "data-testid": testid, onclick: action }, label);
    panel.append(
      h("h2", {}, "Tiles of interest"),
      h("p", { class: "muted" }, `Grid of ${this.tileSize} px tiles ${this.restricted ? "under your ROI" : "over the whole slide (you have no ROI)"}. Keys: n / → next, p / ← previous, t TOI, f non-TOI, x clear.`),
      h(
        "p",
        { class: "tools" },
        button("← Previous (p)", "toi-prev", () => this.go(this.index - 1)),
        " ",
        button("Next (n) →", "toi-next", () => this.go(this.index + 1)),
      ),
      h(
        "p",
        { class: "tools" },
        button("TOI (t)", "mark-toi", () => this.mark("toi")),
        " ",
        button("non-TOI (f)", "mark-non-toi", () => this.mark("non_toi")),
        " ",
        button("Clear (x)", "mark-clear", () => this.mark(null)),
      ),
      this.current,
      this.progress,
    );
    keys.bind(["n", "ArrowRight", " "], () => this.go(this.index + 1));
    keys.bind(["p", "ArrowLeft"], () => this.go(this.index - 1));
    keys.bind("t", () => this.mark("toi"));
    keys.bind("f", () => this.mark("non_toi"));
    keys.bind(["x", "Delete", "Backspace"], () => this.mark(null));
    this.app.parts.viewer.addHandler("canvas-click", (event) => this.onClick(event));
    store.addEventListener("change", () => this.redrawTiles());
    store.addEventListener("reset", () => this.redrawTiles());
    this.redrawTiles();
    this.go(this.index, { immediately: true });
  }

  // -- tiles --------------------------------------------------------------------------------
  ownItemOf(tile) {
    for (const item of this.app.parts.store.items.values()) {
      if (item.own && item.tile_col === tile.col && item.tile_row === tile.row) return item;
    }
    return null;
  }

  labelOf(tile) {
    return this.ownItemOf(tile)?.label ?? null;
  }

  tileShape(tile, label) {
    const ring = rectRing(tile.x, tile.y, tile.w, tile.h);
    const style = LABELS[label];
    return {
      id: `tile:${tile.col}:${tile.row}`,
      ring: flatten(ring),
      bbox: [tile.x, tile.y, tile.x + tile.w, tile.y + tile.h],
      stroke: style?.colour ?? UNLABELLED,
      fill: style ? style.colour : null,
      fillAlpha: 0.18,
      text: style?.name,
    };
  }

  redrawTiles() {
    const labels = new Map();
    for (const item of this.app.parts.store.items.values()) {
      if (item.own && item.tile_col !== null) labels.set(`${item.tile_col}:${item.tile_row}`, item.label);
    }
    const shapes = this.tiles.map((t) => this.tileShape(t, labels.get(`${t.col}:${t.row}`)));
    this.app.setExtraShapes(shapes);
    this.renderSoon();
  }

  // -- walking ------------------------------------------------------------------------------
  go(index, { immediately = false } = {}) {
    if (!this.tiles.length) return;
    this.index = Math.max(0, Math.min(this.tiles.length - 1, index));
    const tile = this.tiles[this.index];
    const pad = 0.08 * Math.max(tile.w, tile.h);
    const item = this.app.parts.viewer.world.getItemAt(0);
    const rect = item.imageToViewportRectangle(tile.x - pad, tile.y - pad, tile.w + 2 * pad, tile.h + 2 * pad);
    this.app.parts.viewer.viewport.fitBounds(rect, immediately);
    this.app.parts.editor.setHighlight(rectRing(tile.x, tile.y, tile.w, tile.h));
    this.renderSoon();
  }

  onClick(event) {
    if (!event.quick) return;
    event.preventDefaultAction = true;
    const p = this.app.parts.viewer.viewport.viewerElementToImageCoordinates(event.position);
    const index = this.tiles.findIndex((t) => p.x >= t.x && p.x < t.x + t.w && p.y >= t.y && p.y < t.y + t.h);
    if (index >= 0) this.go(index);
  }

  /** Label the current tile (`null` clears it) and move to the next one. */
  mark(label) {
    if (this.app.readOnly() || !this.tiles.length) return;
    const tile = this.tiles[this.index];
    const { store, queue } = this.app.parts;
    const item = this.ownItemOf(tile);
    if (label === null) {
      if (item) {
        store.remove(item.id);
        queue.delete(item.id);
      }
      this.renderSoon();
      return;
    }
    if (item && item.label !== label) {
      store.patch(item.id, { label });
      queue.update(item.id, { label }, { label });
    } else if (!item) {
      const created = store.put({
        id: store.newTmpId(),
        set: null,
        ring: rectRing(tile.x, tile.y, tile.w, tile.h),
        label,
        tile_col: tile.col,
        tile_row: tile.row,
        version: 0,
        annotator: store.userId,
        own: true,
      });
      // No geometry: the server derives the tile's square from the project's grid.
      queue.create(created, { label, tile_col: tile.col, tile_row: tile.row });
    }
    this.go(this.index + 1);
  }

  render() {
    let toi = 0;
    let nonToi = 0;
    for (const tile of this.tiles) {
      const label = this.labelOf(tile);
      if (label === "toi") toi += 1;
      if (label === "non_toi") nonToi += 1;
    }
    const total = this.tiles.length;
    const labelled = toi + nonToi;
    Object.assign(this.progress.dataset, { total, toi, nonToi, unlabelled: total - labelled });
    this.progress.textContent = `${labelled} / ${total} tiles labelled · TOI ${toi} · non-TOI ${nonToi} · unlabelled ${total - labelled}`;
    const tile = this.tiles[this.index];
    if (!tile) {
      this.current.textContent = "No tiles.";
      return;
    }
    const label = this.labelOf(tile);
    this.current.dataset.col = tile.col;
    this.current.dataset.row = tile.row;
    this.current.dataset.label = label ?? "";
    this.current.textContent = `Tile ${this.index + 1} of ${total} (column ${tile.col}, row ${tile.row}): ${label ? LABELS[label].name : "unlabelled"}`;
  }
}
