// The bulk annotation layer: thousands of polygons over OpenSeadragon at full frame rate.
//
// Why not a library renderer: in headless Debian chromium (no GPU; WebGL through SwiftShader)
// @annotorious/openseadragon and geojs both drew 5,000 cells at under 1 frame/s, because every
// pan/zoom frame re-rasterised every shape in software. See frontend/ANNOTATION_LIBRARY.md.
//
// How it works (STYLE habit 11, openseadragon-svg-overlay's resize() idea with a bitmap):
// a *snapshot* is the viewport plus a margin, rasterised once at the current zoom, off the main
// thread (worker + OffscreenCanvas), and handed to one "bitmaprenderer" canvas without a copy.
// Each "update-viewport" rewrites that canvas's CSS transform and nothing else, so the
// compositor moves it: O(1) per frame, whatever the number of shapes. (Copying the bitmap onto
// a 2D canvas every frame instead cost ~40% of the frame rate in software rendering.) A new
// snapshot is requested when the view settles, when the zoom drifts past `maxDrift`, or when
// the view leaves the snapshot; frames keep flowing meanwhile.
//
// Coordinates: shapes are level-0 slide px (OpenSeadragon image coordinates); the canvas is CSS
// px relative to the viewer element. Rotation and flipping are not supported (not enabled).
import OpenSeadragon from "openseadragon";
import { drawSnapshot } from "./draw.js";

const DEFAULTS = { margin: 0.3, maxDrift: 1.6, settleMs: 150, workerUrl: null };

export class CanvasOverlay {
  /**
   * @param {OpenSeadragon.Viewer} viewer
   * @param {{margin?: number, maxDrift?: number, settleMs?: number, workerUrl?: string|null}} options
   *   margin: snapshot margin on each side, as a fraction of the viewport;
   *   workerUrl: the bundled overlay_worker.js; without it (or OffscreenCanvas) drawing happens
   *   on the main thread.
   */
  constructor(viewer, options = {}) {
    this.viewer = viewer;
    this.opts = { ...DEFAULTS, ...options };
    /** @type {Map<string|number, import("./draw.js").Shape>} */
    this.shapes = new Map();
    this.hidden = new Set();
    this.snap = null;
    this.seq = 0;
    this.inFlight = false;
    this.dirty = false;
    this.settleTimer = 0;
    this.renders = 0;
    this.canvas = createCanvas();
    // Without OffscreenCanvas (old browsers) snapshots are drawn straight into a 2D canvas.
    this.offscreen = typeof OffscreenCanvas !== "undefined";
    this.ctx = this.canvas.getContext(this.offscreen ? "bitmaprenderer" : "2d");
    // A transformed canvas is its own compositing layer; isolating OpenSeadragon's canvas
    // element keeps it (and the editor's SVG) under the navigator and the buttons.
    viewer.canvas.style.isolation = "isolate";
    viewer.canvas.appendChild(this.canvas);
    this.worker = startWorker(this.opts.workerUrl, (data) => this.receive(data));
    this.onViewport = () => this.follow();
    viewer.addHandler("update-viewport", this.onViewport);
    viewer.addHandler("resize", () => this.refresh());
  }

  // -- data ---------------------------------------------------------------------------------
  setShapes(shapes) {
    this.shapes = new Map(shapes.map((s) => [s.id, s]));
    this.post({ type: "set", shapes });
    this.refresh();
  }

  upsert(shape) {
    this.shapes.set(shape.id, shape);
    this.post({ type: "upsert", shape });
    this.refresh();
  }

  /** Insert or replace several shapes in one message (the TOI grid on each label change). */
  upsertMany(shapes) {
    for (const shape of shapes) this.shapes.set(shape.id, shape);
    this.post({ type: "upsertMany", shapes });
    this.refresh();
  }

  remove(id) {
    if (!this.shapes.delete(id)) return;
    this.post({ type: "remove", id });
    this.refresh();
  }

  /** Shapes in `ids` are left out: the editor draws the one being edited itself. */
  setHidden(ids) {
    this.hidden = new Set(ids);
    this.post({ type: "hidden", ids: [...this.hidden] });
    this.refresh();
  }

  post(message) {
    if (this.worker) this.worker.postMessage(message);
  }

  // -- view ---------------------------------------------------------------------------------
  /** The current view: level-0 px at the viewer's top-left, CSS px per level-0 px, size. */
  view() {
    const item = this.viewer.world.getItemAt(0);
    if (!item) return null;
    const vp = this.viewer.viewport;
    const origin = item.viewportToImageCoordinates(vp.pointFromPixel(new OpenSeadragon.Point(0, 0), true));
    const size = vp.getContainerSize();
    const scale = item.viewportToImageZoom(vp.getZoom(true));
    return { x: origin.x, y: origin.y, scale, width: size.x, height: size.y };
  }

  follow() {
    const view = this.view();
    if (!view) return;
    this.place(view);
    if (!this.snap || !covers(this.snap, view, this.opts.maxDrift)) this.requestRender();
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.settle(), this.opts.settleMs);
  }

  /** Once the view stops, redraw it sharp unless the snapshot already matches its zoom. */
  settle() {
    const view = this.view();
    if (view && this.snap && Math.abs(view.scale / this.snap.scale - 1) < 1e-3) return;
    this.requestRender();
  }

  /** Data changed: redraw now (coalesced with a render in flight). */
  refresh() {
    this.requestRender();
  }

  /** The per-frame work: one CSS transform mapping the snapshot onto the viewer. */
  place(view) {
    const s = this.snap;
    if (!s) return;
    const k = view.scale / s.scale / s.dpr;
    const tx = (s.x - view.x) * view.scale;
    const ty = (s.y - view.y) * view.scale;
    this.canvas.style.transform = `translate(${tx}px, ${ty}px) scale(${k})`;
  }

  // -- snapshots ----------------------------------------------------------------------------
  requestRender() {
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    const view = this.view();
    if (!view) return;
    const snap = snapshotFrame(view, this.opts.margin);
    this.seq += 1;
    if (this.worker) {
      this.inFlight = true;
      this.dirty = false;
      this.worker.postMessage({ type: "render", seq: this.seq, snap });
      return;
    }
    this.receive({ type: "frame", seq: this.seq, snap, bitmap: this.renderHere(snap) });
  }

  /** Main-thread fallback when no worker could start. */
  renderHere(snap) {
    const width = Math.round(snap.w * snap.dpr);
    const height = Math.round(snap.h * snap.dpr);
    if (!this.offscreen) {
      this.canvas.width = width;
      this.canvas.height = height;
      drawSnapshot(this.ctx, this.shapes.values(), snap, this.hidden);
      return null;
    }
    const canvas = new OffscreenCanvas(width, height);
    drawSnapshot(canvas.getContext("2d"), this.shapes.values(), snap, this.hidden);
    return canvas.transferToImageBitmap();
  }

  receive(data) {
    if (data.type !== "frame") return;
    this.inFlight = false;
    if (data.bitmap) {
      // The bitmap's size is the canvas's; setting it first keeps the image unscaled.
      if (this.canvas.width !== data.bitmap.width) this.canvas.width = data.bitmap.width;
      if (this.canvas.height !== data.bitmap.height) this.canvas.height = data.bitmap.height;
      this.ctx.transferFromImageBitmap(data.bitmap);
    }
    this.snap = data.snap;
    this.renders += 1;
    this.canvas.dataset.renders = String(this.renders);
    const view = this.view();
    if (view) this.place(view);
    if (this.dirty) this.requestRender();
    this.viewer.raiseEvent("annotation-overlay-drawn", { seq: data.seq });
  }

  destroy() {
    this.viewer.removeHandler("update-viewport", this.onViewport);
    clearTimeout(this.settleTimer);
    if (this.worker) this.worker.terminate();
    this.canvas.remove();
  }
}

function createCanvas() {
  const canvas = document.createElement("canvas");
  canvas.className = "annotation-overlay";
  canvas.setAttribute("data-testid", "annotation-overlay");
  Object.assign(canvas.style, {
    position: "absolute",
    left: "0",
    top: "0",
    pointerEvents: "none",
    transformOrigin: "0 0",
  });
  return canvas;
}

function startWorker(url, onMessage) {
  if (!url || typeof OffscreenCanvas === "undefined" || typeof Worker === "undefined") return null;
  try {
    const worker = new Worker(url, { type: "module" });
    worker.onmessage = ({ data }) => onMessage(data);
    worker.onerror = (event) => console.error("annotation overlay worker failed", event.message);
    return worker;
  } catch (error) {
    // A browser that refuses module workers still gets the overlay, drawn on the main thread.
    console.warn("annotation overlay: drawing on the main thread", error);
    return null;
  }
}

/** The snapshot for `view`: the viewport plus `margin` of it on each side, at its zoom. */
function snapshotFrame(view, margin) {
  return {
    x: view.x - (view.width * margin) / view.scale,
    y: view.y - (view.height * margin) / view.scale,
    scale: view.scale,
    w: Math.ceil(view.width * (1 + 2 * margin)),
    h: Math.ceil(view.height * (1 + 2 * margin)),
    dpr: window.devicePixelRatio || 1,
  };
}

/** Whether snapshot `s` holds all of `view` at a zoom within `maxDrift` of its own. */
function covers(s, view, maxDrift) {
  const drift = view.scale / s.scale;
  if (drift > maxDrift || drift < 1 / maxDrift) return false;
  const right = view.x + view.width / view.scale;
  const bottom = view.y + view.height / view.scale;
  return view.x >= s.x && view.y >= s.y && right <= s.x + s.w / s.scale && bottom <= s.y + s.h / s.scale;
}
