// The annotation page: wires the viewer, the store, the canvas overlay, the editor, the save
// queue, the task box and one stage (ROI, TOI or cells) together. Page data comes from the
// root element's data-* attributes and the JSON API.
import OpenSeadragon from "openseadragon";
import { api } from "./api.js";
import { CellStage } from "./cells.js";
import { h, perFrame } from "./dom.js";
import { PolygonEditor } from "./editor.js";
import { flatten } from "./geometry.js";
import { Keymap } from "./keyboard.js";
import { CanvasOverlay } from "./overlay.js";
import { RoiStage } from "./roi.js";
import { SaveStatus } from "./status.js";
import { AnnotationStore } from "./store.js";
import { SaveQueue } from "./sync.js";
import { TaskPanel } from "./tasks.js";
import { ToiStage } from "./toi.js";
import { openViewer } from "./viewer_setup.js";

const STAGES = { roi: RoiStage, toi: ToiStage, cell: CellStage };
const TASK_POLL_MS = 60000;

/** The page context, read from data-* attributes of the root element. */
export function readContext(root) {
  const d = root.dataset;
  return {
    slideId: Number(d.slideId),
    stage: d.stage,
    userId: Number(d.userId),
    projectId: Number(d.projectId),
    role: d.role,
    mpp: parseFloat(d.mppX) || 0,
    workerUrl: d.overlayWorker || null,
  };
}

export class AnnotatePage {
  constructor(root) {
    this.root = root;
    this.ctx = readContext(root);
    this.extraIds = new Set();
    this.setId = null;
    this.blinded = null;
  }

  async start() {
    this.root.dataset.state = "loading";
    const viewer = await openViewer(this.root.querySelector("[data-role=viewer]"));
    const store = new AnnotationStore(this.ctx.userId);
    const { slideId, stage, userId } = this.ctx;
    const queue = new SaveQueue({
      storageKey: `bmadcc:unsaved:${userId}:${slideId}:${stage}`,
      store,
      ensureSet: () => this.ensureSet(),
    });
    this.parts = {
      viewer,
      store,
      queue,
      overlay: new CanvasOverlay(viewer, { workerUrl: this.ctx.workerUrl }),
      editor: new PolygonEditor(viewer),
      keys: new Keymap(),
    };
    this.stage = new STAGES[stage](this);
    this.tasks = new TaskPanel(this.panel("task"), this.ctx, queue);
    this.status = new SaveStatus(this.panel("save"), queue, (row) => this.stage.describe(row));
    this.bindOverlay();
    await Promise.all([this.reload(), this.tasks.load(), this.stage.load?.()]);
    const restored = queue.restore();
    if (restored) this.notice(`${restored} unsaved change(s) from an earlier visit are being saved.`);
    this.stage.mount(this.panel("stage"));
    this.mountVisibility();
    this.blinded = this.tasks.mine?.blinded ?? null;
    this.tasks.addEventListener("change", () => this.onTasksChanged());
    setInterval(() => this.tasks.load().catch(() => {}), TASK_POLL_MS);
    this.root.dataset.state = "ready";
    // Tests and bench/viewer_fps.py drive the page through this handle.
    this.OpenSeadragon = OpenSeadragon;
    window.bmadccAnnotate = this;
  }

  panel(name) {
    return this.root.querySelector(`[data-panel=${name}]`);
  }

  readOnly() {
    return this.tasks.locked;
  }

  async ensureSet() {
    if (this.setId === null) {
      const aset = await api("/api/annotation-sets/", {
        method: "POST",
        body: { slide: this.ctx.slideId, stage: this.ctx.stage },
      });
      this.setId = aset.id;
    }
    return this.setId;
  }

  /** Fetch every annotation of (slide, stage) the caller may see, then re-show unsaved edits. */
  async reload() {
    const { slideId, stage } = this.ctx;
    const rows = await api(`/api/annotations/?slide=${slideId}&stage=${stage}`);
    this.parts.store.load(rows);
    this.parts.queue.reapplyPending();
  }

  async onTasksChanged() {
    // Unblinded (everyone submitted) or blinded again (a task reopened): what may be shown
    // has changed, so fetch it again.
    const blinded = this.tasks.mine?.blinded ?? null;
    const changed = blinded !== this.blinded;
    this.blinded = blinded;
    if (changed) await this.reload();
    this.stage.tool?.showSelected();
  }

  // -- overlay ------------------------------------------------------------------------------
  shapeOf(item) {
    const style = this.stage.shapeOf(item);
    return style && { id: item.id, ring: flatten(item.ring), bbox: item.bbox, ...style };
  }

  bindOverlay() {
    const { store, overlay } = this.parts;
    store.addEventListener("reset", () => {
      const shapes = [];
      for (const item of store.items.values()) {
        const shape = this.shapeOf(item);
        if (shape) shapes.push(shape);
      }
      this.extraIds.clear();
      overlay.setShapes(shapes);
    });
    store.addEventListener("change", ({ detail }) => {
      const shape = detail.item && this.shapeOf(detail.item);
      if (shape) overlay.upsert(shape);
      else overlay.remove(detail.id);
    });
  }

  /** Shapes that are not annotations (the TOI grid), replaced as a whole. */
  setExtraShapes(shapes) {
    const { overlay } = this.parts;
    const ids = new Set(shapes.map((s) => s.id));
    for (const id of this.extraIds) if (!ids.has(id)) overlay.remove(id);
    this.extraIds = ids;
    overlay.upsertMany(shapes);
  }

  /** Pan and zoom to `item` and select it. */
  focus(item) {
    const { viewer } = this.parts;
    const [x0, y0, x1, y1] = item.bbox;
    const pad = 0.5 * Math.max(x1 - x0, y1 - y0);
    const rect = viewer.world.getItemAt(0).imageToViewportRectangle(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad);
    viewer.viewport.fitBounds(rect);
    this.stage.tool?.select(item.id);
  }

  // -- panels -------------------------------------------------------------------------------
  mountVisibility() {
    const own = h("span", { "data-testid": "visible-own" });
    const others = h("span", { "data-testid": "visible-others" });
    const refresh = h("button", { type: "button", class: "small", "data-testid": "refresh", onclick: () => this.refresh() }, "Refresh");
    this.panel("visibility").append(h("p", {}, "Shown: ", own, " of yours, ", others, " by others. ", refresh));
    const render = perFrame(() => {
      let mine = 0;
      for (const item of this.parts.store.items.values()) if (item.own) mine += 1;
      own.textContent = String(mine);
      others.textContent = String(this.parts.store.items.size - mine);
    });
    this.parts.store.addEventListener("change", render);
    this.parts.store.addEventListener("reset", render);
    render();
  }

  async refresh() {
    await this.tasks.load();
    await this.reload();
  }

  notice(text) {
    this.panel("save").prepend(h("p", { class: "notice" }, text));
  }
}
