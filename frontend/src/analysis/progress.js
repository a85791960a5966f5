// The live progress of one analysis run: per-stage bars (thumbnail, ROI, TOI, cells, classes)
// with done/total, cells found so far and an ETA. State arrives over /ws/analyses/<id>/; the
// server sends the current state on connect, so a page opened mid-run catches up at once.
import { h } from "../annotate/dom.js";

const STAGES = [
  ["thumbnail", "Thumbnail"],
  ["roi", "ROI"],
  ["toi", "TOI"],
  ["cells", "Cells (tiles segmented)"],
  ["classes", "Classes (tiles classified)"],
];
const FINISHED = new Set(["done", "failed", "cancelled"]);

export class RunProgress {
  constructor() {
    this.bars = new Map();
    this.status = h("p", { class: "run-status", "data-testid": "run-status" });
    this.found = h("p", { class: "muted", "data-testid": "run-cells" });
    this.list = h("ul", { class: "run-stages" });
    for (const [key, name] of STAGES) {
      const bar = h("progress", { max: "1", value: "0", "data-stage": key });
      const count = h("span", { class: "muted" }, "");
      this.bars.set(key, { bar, count });
      this.list.append(h("li", {}, h("span", {}, name), " ", bar, " ", count));
    }
    this.el = h("div", { class: "run-progress" }, this.status, this.list, this.found);
    this.socket = null;
  }

  /** Show `state` (the server's run state: status, stages, cells_found, eta_s, error). */
  show(state) {
    this.el.dataset.status = state.status;
    const error = state.error ? ` — ${state.error}` : "";
    this.status.textContent = `Run ${state.id}: ${state.status}${error}`;
    for (const [key, { bar, count }] of this.bars) {
      const stage = state.stages[key];
      bar.max = stage ? Math.max(stage.total, 1) : 1;
      bar.value = stage ? stage.done : 0;
      count.textContent = stage ? `${stage.done}/${stage.total}` : "";
    }
    const eta = state.eta_s == null || state.status !== "running" ? "" : ` · about ${Math.ceil(state.eta_s)} s left`;
    this.found.textContent = state.cells_found == null ? eta : `${state.cells_found} cells found${eta}`;
  }

  /** Follow run `id` live; `onState(state)` sees each state, the last one finished. */
  follow(id, onState) {
    this.socket?.close();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/analyses/${id}/`);
    socket.onmessage = (event) => {
      const state = JSON.parse(event.data);
      this.show(state);
      onState(state);
      if (FINISHED.has(state.status)) socket.close();
    };
    this.socket = socket;
  }
}

export function isFinished(state) {
  return FINISHED.has(state.status);
}
