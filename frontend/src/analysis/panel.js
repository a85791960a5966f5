// The viewer's analysis panel: an "Analyse" button, the latest run's live progress, and the
// finished run's cells over the slide, coloured by class, with a "needs review" filter.
// The cells are the run's model_run annotation set, drawn by the annotation overlay.
import { CanvasOverlay } from "../annotate/overlay.js";
import { api } from "../annotate/api.js";
import { h } from "../annotate/dom.js";
import { bboxOf, flatten, ringOf } from "../annotate/geometry.js";
import { RunProgress, isFinished } from "./progress.js";

const UNKNOWN = "#888888";

export class AnalysisPanel {
  /** @param {HTMLElement} root carries data-slide-id, data-project-id, data-overlay-worker */
  constructor(root, viewer) {
    this.root = root;
    this.viewer = viewer;
    this.ctx = { slideId: root.dataset.slideId, projectId: root.dataset.projectId };
    this.progress = new RunProgress();
    this.button = h("button", { type: "button", "data-testid": "analyse" }, "Analyse");
    this.button.onclick = () => this.start();
    this.message = h("p", { class: "error-text", "data-testid": "analyse-error" });
    this.showCells = h("input", { type: "checkbox", "data-testid": "show-cells" });
    this.reviewOnly = h("input", { type: "checkbox", "data-testid": "review-only" });
    this.showCells.onchange = () => this.drawCells();
    this.reviewOnly.onchange = () => this.drawCells();
    this.cellControls = h(
      "p",
      { class: "run-cells", hidden: "" },
      h("label", {}, this.showCells, " show the run's cells"),
      " ",
      h("label", {}, this.reviewOnly, " needs review only"),
    );
    // Every run of the slide, with its status and whether its report is signed (newest first).
    this.runs = h("table", { class: "runs", "data-testid": "runs" });
    root.append(h("h2", {}, "Analysis"), this.button, this.message, this.progress.el, this.cellControls, this.runs);
    this.overlay = null;
    this.run = null;
  }

  async load() {
    const runs = await api(`/api/analyses/?slide=${this.ctx.slideId}`);
    // A finished latest run lists the runs when it is followed (finished()); else list now.
    if (runs.results.length) this.follow(runs.results[0]);
    if (!runs.results.length || !isFinished(runs.results[0])) await this.listRuns();
  }

  async listRuns() {
    const { runs } = await api(`/api/slides/${this.ctx.slideId}/runs/`);
    const report = (run) => {
      const state = run.signed ? `signed (version ${run.version})` : run.version ? "in review" : "not started";
      return run.report_url ? h("a", { href: run.report_url }, `report: ${state}`) : "—";
    };
    this.runs.replaceChildren(
      ...(runs.length ? [h("tr", {}, h("th", {}, "Run"), h("th", {}, "Status"), h("th", {}, "Report"))] : []),
      ...runs.map((run) => h("tr", { dataset: { run: run.id, signed: String(run.signed) } },
        h("td", {}, `#${run.id}`), h("td", { class: "status" }, run.status), h("td", { class: "signed" }, report(run)))),
    );
  }

  async start() {
    this.message.textContent = "";
    try {
      this.follow(await api("/api/analyses/", { method: "POST", body: { slide: Number(this.ctx.slideId) } }));
    } catch (error) {
      this.message.textContent = error.message;
    }
  }

  follow(state) {
    this.run = state;
    this.progress.show(state);
    this.button.disabled = !isFinished(state);
    this.cellControls.hidden = true;
    if (isFinished(state)) return this.finished(state);
    this.progress.follow(state.id, (next) => {
      this.run = next;
      if (isFinished(next)) this.finished(next);
    });
  }

  finished(state) {
    this.button.disabled = false;
    this.listRuns();
    this.cellControls.hidden = !(state.status === "done" && state.sets.cell);
  }

  async drawCells() {
    if (!this.showCells.checked || !this.run?.sets.cell) {
      this.overlay?.setShapes([]);
      return;
    }
    this.overlay ??= new CanvasOverlay(this.viewer, { workerUrl: this.root.dataset.overlayWorker || null });
    const { slideId, projectId } = this.ctx;
    const [rows, classes, review] = await Promise.all([
      api(`/api/annotations/?slide=${slideId}&set=${this.run.sets.cell}`),
      api(`/api/projects/${projectId}/label-classes/`),
      this.reviewOnly.checked ? api(`/api/analyses/${this.run.id}/review/`) : null,
    ]);
    const colour = new Map(classes.map((c) => [c.key, c.colour]));
    const keep = review && new Set(review.ids);
    const shapes = [];
    for (const row of rows) {
      if (keep && !keep.has(row.id)) continue;
      const ring = ringOf(row.geometry);
      const c = colour.get(row.label) ?? UNKNOWN;
      shapes.push({ id: row.id, ring: flatten(ring), bbox: bboxOf(ring), stroke: c, fill: c, fillAlpha: 0.2 });
    }
    this.overlay.setShapes(shapes);
    this.root.dataset.cellsShown = String(shapes.length);
  }
}
