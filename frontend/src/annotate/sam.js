// Segment Anything assist: in click mode, a click on a cell asks the server for a polygon
// (level-0 px), shown as an editable proposal; Enter (or Accept) keeps it, Escape drops it.
// Without a configured checkpoint the button says so and stays off.
import { api } from "./api.js";
import { ringOf } from "./geometry.js";

export class SamAssist extends EventTarget {
  /**
   * @param {object} app          the page (ctx.slideId, parts.editor)
   * @param {import("./polygons.js").PolygonTool} tool  accepted proposals are added through it
   */
  constructor(app, tool) {
    super();
    this.app = app;
    this.tool = tool;
    this.installed = false;
    this.model = null;
    this.active = false;
    this.busy = false;
    this.proposal = null;
    this.message = "";
    tool.interceptClick = (x, y) => this.onClick(x, y);
  }

  async init() {
    try {
      const status = await api("/api/sam/status/");
      this.installed = Boolean(status.installed);
      this.model = status.model;
      this.message = this.installed ? "" : "Segment Anything model not installed";
    } catch (error) {
      this.message = `SAM status unavailable: ${error.message}`;
    }
    this.changed();
  }

  toggle() {
    if (!this.installed) return;
    this.active = !this.active;
    if (!this.active) this.reject();
    this.changed();
  }

  onClick(x, y) {
    if (!this.active || this.tool.mode === "draw") return false;
    if (this.proposal) return false; // clicks edit/select while a proposal waits
    this.propose(x, y);
    return true;
  }

  async propose(x, y) {
    if (this.busy) return;
    this.busy = true;
    this.message = "Segmenting…";
    this.changed();
    try {
      const body = await api(`/api/slides/${this.app.ctx.slideId}/sam/`, {
        method: "POST",
        body: { x: Math.round(x), y: Math.round(y) },
      });
      this.proposal = ringOf(body.polygon);
      this.message = `Proposal (score ${body.score.toFixed(2)}${body.cached ? ", cached region" : ""}): Enter accepts, Escape drops.`;
      this.tool.select(null);
      this.app.parts.editor.edit(this.proposal, {
        colour: "#f59e0b",
        dashed: true,
        onChange: (ring) => {
          this.proposal = ring;
        },
      });
    } catch (error) {
      if (error.status === 503) this.installed = false;
      this.message = error.message;
    } finally {
      this.busy = false;
      this.changed();
    }
  }

  accept() {
    if (!this.proposal) return false;
    const ring = this.proposal;
    this.proposal = null;
    this.message = "";
    this.tool.add(ring);
    this.changed();
    return true;
  }

  reject() {
    if (!this.proposal) return false;
    this.proposal = null;
    this.message = "";
    this.app.parts.editor.clear();
    this.changed();
    return true;
  }

  changed() {
    this.dispatchEvent(new CustomEvent("change"));
  }
}
