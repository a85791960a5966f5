// The shape being drawn or edited, in a small SVG over the viewer: at most one polygon with its
// vertex handles (plus an optional highlight rectangle), so redrawing it on each frame is
// cheap, unlike the thousands of shapes in the canvas overlay.
//
// Coordinates: the model is level-0 px; the SVG is CSS px relative to the viewer element,
// recomputed from the model on each "update-viewport".
import OpenSeadragon from "openseadragon";

const SVG = "http://www.w3.org/2000/svg";
const CLOSE_PX = 10; // a click this close to the first vertex closes the polygon

function el(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export class PolygonEditor {
  constructor(viewer) {
    this.viewer = viewer;
    this.mode = "idle"; // idle | draw | edit
    this.ring = [];
    this.cursor = null;
    this.colour = "#6d28d9";
    this.highlight = null;
    this.onChange = null;
    this.svg = el("svg", { class: "annotation-editor", "data-testid": "annotation-editor" });
    Object.assign(this.svg.style, {
      position: "absolute",
      inset: "0",
      width: "100%",
      height: "100%",
      pointerEvents: "none",
      overflow: "visible",
    });
    this.highlightPath = el("path", { class: "editor-highlight", fill: "none" });
    this.path = el("path", { class: "editor-shape" });
    this.rubber = el("path", { class: "editor-rubber", fill: "none" });
    this.handles = el("g", { class: "editor-handles" });
    this.svg.append(this.highlightPath, this.path, this.rubber, this.handles);
    viewer.canvas.appendChild(this.svg);
    viewer.addHandler("update-viewport", () => this.redraw());
    viewer.addHandler("canvas-move", (event) => this.track(event));
  }

  // -- modes --------------------------------------------------------------------------------
  /** Start a new polygon; vertices come from addVertex(). */
  startDrawing(colour) {
    this.mode = "draw";
    this.ring = [];
    this.colour = colour;
    this.onChange = null;
    this.redraw();
  }

  /**
   * Show `ring` (level-0 px) with draggable vertices; `onChange(ring)` after each drag.
   * `editable` false shows the outline only (another annotator's shape, or a submitted task).
   */
  edit(ring, { colour, editable = true, onChange = null, dashed = false } = {}) {
    this.mode = "edit";
    this.ring = ring.map(([x, y]) => [x, y]);
    this.colour = colour;
    this.editable = editable;
    this.dashed = dashed;
    this.onChange = onChange;
    this.redraw();
  }

  clear() {
    this.mode = "idle";
    this.ring = [];
    this.onChange = null;
    this.redraw();
  }

  /** A thick outline (TOI: the current tile), independent of the polygon. */
  setHighlight(ring) {
    this.highlight = ring;
    this.redraw();
  }

  // -- drawing ------------------------------------------------------------------------------
  /** Add a vertex (level-0 px). Returns true when it closed the polygon (click on the first). */
  addVertex(x, y) {
    if (this.mode !== "draw") return false;
    if (this.ring.length >= 3) {
      const first = this.toScreen(this.ring[0]);
      const here = this.toScreen([x, y]);
      if (Math.hypot(first.x - here.x, first.y - here.y) <= CLOSE_PX) return true;
    }
    this.ring.push([x, y]);
    this.redraw();
    return false;
  }

  removeLastVertex() {
    if (this.mode === "draw" && this.ring.length) {
      this.ring.pop();
      this.redraw();
    }
  }

  get drawing() {
    return this.mode === "draw";
  }

  track(event) {
    if (this.mode !== "draw") return;
    this.cursor = event.position;
    this.drawRubber();
  }

  // -- rendering ----------------------------------------------------------------------------
  toScreen([x, y]) {
    return this.viewer.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
  }

  toImage(clientX, clientY) {
    const rect = this.viewer.element.getBoundingClientRect();
    const point = new OpenSeadragon.Point(clientX - rect.left, clientY - rect.top);
    const image = this.viewer.viewport.viewerElementToImageCoordinates(point);
    return [image.x, image.y];
  }

  pathOf(ring, close) {
    if (!ring.length) return "";
    const pts = ring.map((v) => this.toScreen(v));
    const d = pts.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join("");
    return close ? `${d}Z` : d;
  }

  redraw() {
    if (!this.viewer.world.getItemAt(0)) return;
    this.highlightPath.setAttribute("d", this.highlight ? this.pathOf(this.highlight, true) : "");
    this.path.setAttribute("d", this.pathOf(this.ring, this.mode === "edit"));
    this.path.setAttribute("stroke", this.colour);
    this.path.setAttribute("fill", this.mode === "edit" ? this.colour : "none");
    this.path.setAttribute("stroke-dasharray", this.dashed ? "6 4" : "none");
    this.drawHandles();
    this.drawRubber();
  }

  drawRubber() {
    const last = this.ring[this.ring.length - 1];
    if (this.mode !== "draw" || !last || !this.cursor) {
      this.rubber.setAttribute("d", "");
      return;
    }
    const p = this.toScreen(last);
    this.rubber.setAttribute("d", `M${p.x},${p.y}L${this.cursor.x},${this.cursor.y}`);
    this.rubber.setAttribute("stroke", this.colour);
  }

  drawHandles() {
    this.handles.replaceChildren();
    const show = this.mode === "draw" || (this.mode === "edit" && this.editable);
    if (!show) return;
    this.ring.forEach((vertex, index) => {
      const p = this.toScreen(vertex);
      const handle = el("circle", {
        cx: p.x.toFixed(1),
        cy: p.y.toFixed(1),
        r: index === 0 && this.mode === "draw" ? 7 : 5,
        class: index === 0 && this.mode === "draw" ? "editor-handle first" : "editor-handle",
        "data-index": index,
      });
      handle.style.pointerEvents = "all";
      this.handles.appendChild(handle);
      if (this.mode === "edit") this.makeDraggable(handle, index);
    });
  }

  /** Drag a vertex: OpenSeadragon stops panning while the handle has the pointer. */
  makeDraggable(handle, index) {
    const stop = (event) => event.stopPropagation();
    handle.addEventListener("click", stop);
    handle.addEventListener("pointerdown", (down) => {
      down.stopPropagation();
      down.preventDefault();
      handle.setPointerCapture(down.pointerId);
      this.viewer.setMouseNavEnabled(false);
      const move = (event) => {
        this.ring[index] = this.toImage(event.clientX, event.clientY);
        this.path.setAttribute("d", this.pathOf(this.ring, true));
        const p = this.toScreen(this.ring[index]);
        handle.setAttribute("cx", p.x.toFixed(1));
        handle.setAttribute("cy", p.y.toFixed(1));
      };
      const up = (event) => {
        event.stopPropagation();
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        this.viewer.setMouseNavEnabled(true);
        if (this.onChange) this.onChange(this.ring.map(([x, y]) => [x, y]));
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
    });
  }
}
