// The save indicator ("All changes saved" / "3 unsaved changes") and the conflict and error
// panel, fed by the SaveQueue. A stale edit is shown with the server's current state and two
// ways out; nothing is overwritten silently.
import { h } from "./dom.js";

export class SaveStatus {
  /**
   * @param {HTMLElement} root
   * @param {import("./sync.js").SaveQueue} queue
   * @param {(row: object) => string} describeRow  one line for an annotation ("Myeloblast, 24 vertices")
   */
  constructor(root, queue, describeRow) {
    this.root = root;
    this.queue = queue;
    this.describeRow = describeRow;
    this.errors = [];
    // Fixed children, updated in place: the Retry button must stay clickable while the
    // queue flips between "saving" and "retrying".
    this.text = h("span", { class: "save-text" });
    this.retry = h("button", { type: "button", class: "small", hidden: true, "data-testid": "retry-now", onclick: () => queue.retryNow() }, "Retry now");
    this.conflictNote = h("strong", { class: "bad" });
    this.indicator = h("div", { class: "save-indicator", "data-testid": "save-indicator", role: "status" }, this.text, " ", this.retry, this.conflictNote);
    this.conflictList = h("div", { class: "conflicts", "data-testid": "conflicts" });
    this.errorList = h("ul", { class: "save-errors", "data-testid": "save-errors" });
    root.append(this.indicator, this.conflictList, this.errorList);
    queue.addEventListener("state", () => this.render());
    queue.addEventListener("conflict", () => this.renderConflicts());
    queue.addEventListener("rejected", ({ detail }) => this.addError(detail.error.message));
    window.addEventListener("online", () => queue.retryNow());
    window.addEventListener("beforeunload", (event) => {
      if (queue.pending || queue.conflicts.length) event.preventDefault();
    });
    this.render();
  }

  render() {
    const { pending, status, lastError } = this.queue;
    const conflicts = this.queue.conflicts.length;
    this.indicator.dataset.state = pending ? status : conflicts ? "conflict" : "saved";
    this.indicator.dataset.pending = String(pending);
    this.retry.hidden = !(pending && status === "retrying");
    this.conflictNote.textContent = conflicts ? ` ${conflicts} conflict(s)` : "";
    if (!pending) {
      this.text.textContent = conflicts ? "" : "All changes saved";
      return;
    }
    const noun = pending === 1 ? "unsaved change" : "unsaved changes";
    const why = status === "retrying" ? `server unreachable, retrying: ${lastError}` : "saving…";
    this.text.textContent = `${pending} ${noun} (${why})`;
  }

  renderConflicts() {
    this.conflictList.replaceChildren(...this.queue.conflicts.map((c) => this.conflictCard(c)));
    this.render();
  }

  conflictCard(conflict) {
    const { current, op } = conflict;
    const mine = op.kind === "delete" ? "delete it" : describeChanges(op);
    const theirs = current.is_deleted ? "deleted" : this.describeRow(current);
    const resolve = (how) => {
      if (how === "theirs") this.queue.keepTheirs(conflict);
      else this.queue.keepMine(conflict);
      this.renderConflicts();
    };
    return h(
      "div",
      { class: "conflict", "data-testid": "conflict", dataset: { annotation: current.id } },
      h("p", {}, h("strong", {}, "Changed elsewhere: "), conflict.message),
      h("p", {}, `Now stored (version ${current.version}): ${theirs}.`),
      h("p", {}, `Your edit: ${mine}.`),
      h("button", { type: "button", onclick: () => resolve("theirs"), "data-testid": "keep-theirs" }, "Use the stored version"),
      " ",
      h("button", { type: "button", onclick: () => resolve("mine"), "data-testid": "keep-mine" }, "Apply my edit on top"),
    );
  }

  addError(message) {
    this.errors = [message, ...this.errors].slice(0, 5);
    this.errorList.replaceChildren(...this.errors.map((m) => h("li", { class: "error-text" }, `Not saved: ${m}`)));
  }
}

function describeChanges(op) {
  const parts = [];
  const changes = op.kind === "create" ? op.body : op.changes;
  if (changes.label !== undefined) parts.push(`label ${changes.label || "(none)"}`);
  if (changes.geometry) parts.push(`outline of ${changes.geometry.coordinates[0].length - 1} vertices`);
  return parts.join(", ") || "no change";
}
