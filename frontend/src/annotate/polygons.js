// The polygon tool shared by the ROI and cell stages: draw (click vertices, close on the first
// vertex, Enter or double-click), select by clicking, drag vertices of the selected shape, delete.
// Every change goes to the store (shown at once) and the save queue (sent to the server).
import { polygonOf } from "./geometry.js";

export class PolygonTool extends EventTarget {
  /**
   * @param {object} deps
   * @param {import("openseadragon").Viewer} deps.viewer
   * @param {import("./store.js").AnnotationStore} deps.store
   * @param {import("./overlay.js").CanvasOverlay} deps.overlay
   * @param {import("./editor.js").PolygonEditor} deps.editor
   * @param {import("./sync.js").SaveQueue} deps.queue
   * @param {() => boolean} deps.readOnly       true once the caller's task is submitted
   * @param {(item: object) => string} deps.colourOf
   * @param {() => string} deps.newLabel        label of a newly drawn shape ("" for ROI)
   */
  constructor(deps) {
    super();
    Object.assign(this, deps);
    this.mode = "select"; // select | draw
    this.selected = null;
    this.interceptClick = null; // (x, y) => boolean: another tool (SAM) may take a click first
    this.viewer.addHandler("canvas-click", (event) => this.onClick(event));
    this.viewer.addHandler("canvas-double-click", (event) => {
      if (this.mode === "draw") {
        event.preventDefaultAction = true;
        this.finish();
      }
    });
    this.store.addEventListener("renamed", ({ detail }) => {
      if (this.selected === detail.from) this.select(detail.to);
    });
    this.store.addEventListener("change", ({ detail }) => {
      if (detail.id !== this.selected) return;
      if (detail.item) this.showSelected();
      else this.select(null);
    });
  }

  // -- drawing ------------------------------------------------------------------------------
  startDraw() {
    if (this.readOnly()) return;
    this.select(null);
    this.mode = "draw";
    this.editor.startDrawing(this.colourOf({ label: this.newLabel(), own: true }));
    this.dispatchEvent(new CustomEvent("mode", { detail: { mode: this.mode } }));
  }

  cancel() {
    if (this.mode === "draw") {
      this.mode = "select";
      this.editor.clear();
      this.dispatchEvent(new CustomEvent("mode", { detail: { mode: this.mode } }));
    } else {
      this.select(null);
    }
  }

  /** Close the polygon being drawn and save it; fewer than 3 vertices cancels. */
  finish() {
    if (this.mode !== "draw") return null;
    const ring = dedupe(this.editor.ring);
    this.mode = "select";
    this.editor.clear();
    this.dispatchEvent(new CustomEvent("mode", { detail: { mode: this.mode } }));
    if (ring.length < 3) return null;
    return this.add(ring);
  }

  /** Save a new shape from `ring` (level-0 px) with the current label; it becomes selected. */
  add(ring, label = this.newLabel()) {
    const item = this.store.put({
      id: this.store.newTmpId(),
      set: null,
      ring,
      label,
      tile_col: null,
      tile_row: null,
      version: 0,
      annotator: this.store.userId,
      own: true,
    });
    this.queue.create(item, { geometry: polygonOf(ring), label });
    this.select(item.id);
    return item;
  }

  onClick(event) {
    if (!event.quick) return;
    event.preventDefaultAction = true;
    const image = this.viewer.viewport.viewerElementToImageCoordinates(event.position);
    if (this.interceptClick?.(image.x, image.y)) return;
    if (this.mode === "draw") {
      if (this.editor.addVertex(image.x, image.y)) this.finish();
      return;
    }
    const hit = this.store.hit(image.x, image.y);
    this.select(hit ? hit.id : null);
  }

  // -- selection and edits ------------------------------------------------------------------
  select(id) {
    this.selected = id;
    this.overlay.setHidden(id === null ? [] : [id]);
    this.showSelected();
    this.emitSelection();
  }

  get selectedItem() {
    return this.selected === null ? null : this.store.get(this.selected) || null;
  }

  showSelected() {
    const item = this.selectedItem;
    if (!item) {
      if (this.mode !== "draw") this.editor.clear();
      return;
    }
    this.editor.edit(item.ring, {
      colour: this.colourOf(item),
      editable: item.own && !this.readOnly(),
      dashed: !item.own,
      onChange: (ring) => this.reshape(item.id, ring),
    });
  }

  emitSelection() {
    this.dispatchEvent(new CustomEvent("select", { detail: { item: this.selectedItem } }));
  }

  reshape(id, ring) {
    this.store.patch(id, { ring });
    this.queue.update(id, { geometry: polygonOf(ring) }, { ring });
  }

  /** Give the selected own shape `label`. Returns false when nothing editable is selected. */
  relabel(label) {
    const item = this.selectedItem;
    if (!item || !item.own || this.readOnly()) return false;
    if (item.label !== label) {
      this.store.patch(item.id, { label });
      this.queue.update(item.id, { label }, { label });
    }
    this.showSelected();
    return true;
  }

  deleteSelected() {
    const item = this.selectedItem;
    if (!item || !item.own || this.readOnly()) return false;
    this.select(null);
    this.store.remove(item.id);
    this.queue.delete(item.id);
    return true;
  }
}

/** Drops consecutive vertices closer than 0.5 px (a double-click adds the same point twice). */
function dedupe(ring) {
  const out = [];
  for (const v of ring) {
    const last = out[out.length - 1];
    if (!last || Math.hypot(v[0] - last[0], v[1] - last[1]) >= 0.5) out.push(v);
  }
  return out;
}
