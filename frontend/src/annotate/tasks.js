// The task box: the caller's assignment for (slide, stage) with Start and Submit, and for
// project admins every assignment with Reopen (a recorded admin action, with a note).
import { api } from "./api.js";
import { h } from "./dom.js";

const STATE_NAMES = { assigned: "Assigned", in_progress: "In progress", submitted: "Submitted" };

export class TaskPanel extends EventTarget {
  /**
   * @param {HTMLElement} root
   * @param {{slideId: number, stage: string, userId: number, role: string}} ctx
   * @param {import("./sync.js").SaveQueue} queue  submit waits until nothing is unsaved
   */
  constructor(root, ctx, queue) {
    super();
    this.root = root;
    this.ctx = ctx;
    this.queue = queue;
    this.tasks = [];
    this.message = "";
    queue.addEventListener("state", () => this.render());
  }

  /** The caller's own task, or undefined when they are not assigned. */
  get mine() {
    return this.tasks.find((t) => t.annotator === this.ctx.userId);
  }

  /** Whether the caller's own work on this stage is frozen (submitted). */
  get locked() {
    return this.mine?.state === "submitted";
  }

  async load() {
    const { slideId, stage } = this.ctx;
    this.tasks = await api(`/api/tasks/?slide=${slideId}&stage=${stage}`);
    this.render();
    this.dispatchEvent(new CustomEvent("change"));
  }

  async act(task, action, body) {
    try {
      await api(`/api/tasks/${task.id}/${action}/`, { method: "POST", body });
      this.message = "";
    } catch (error) {
      this.message = error.message;
    }
    await this.load();
  }

  render() {
    const mine = this.mine;
    const children = [h("h2", {}, "Task")];
    if (mine) children.push(this.ownTask(mine));
    else children.push(h("p", { class: "muted", "data-testid": "task-state" }, "Not assigned to you."));
    if (this.ctx.role === "admin" && this.tasks.length) children.push(this.allTasks());
    if (this.message) children.push(h("p", { class: "error-text" }, this.message));
    this.root.replaceChildren(...children);
  }

  ownTask(task) {
    const unsaved = this.queue.pending > 0;
    const parts = [
      h("span", { class: `badge task-${task.state}`, "data-testid": "task-state", dataset: { state: task.state } }, STATE_NAMES[task.state] ?? task.state),
      task.blinded ? h("span", { class: "muted", "data-testid": "blinded" }, " blinded until every annotator submits") : h("span", { class: "muted" }, " unblinded"),
    ];
    const actions = [];
    if (task.state === "assigned") {
      actions.push(h("button", { type: "button", onclick: () => this.act(task, "start") }, "Start"));
    }
    if (task.state !== "submitted") {
      actions.push(
        h(
          "button",
          {
            type: "button",
            class: "primary",
            "data-testid": "submit-task",
            disabled: unsaved,
            title: unsaved ? "Wait until every change is saved" : "Hand in this stage; it becomes read-only",
            onclick: () => this.act(task, "submit"),
          },
          "Submit",
        ),
      );
    } else {
      actions.push(h("p", { class: "muted" }, "Read-only: a project admin can reopen it."));
    }
    return h("div", { class: "own-task" }, h("p", {}, ...parts), h("p", {}, ...actions));
  }

  allTasks() {
    const rows = this.tasks.map((task) => {
      const note = h("input", { type: "text", placeholder: "reason", "aria-label": "reason for reopening" });
      const reopen =
        task.state === "submitted"
          ? h("span", {}, note, h("button", { type: "button", class: "small", onclick: () => this.act(task, "reopen", { note: note.value }) }, "Reopen"))
          : "";
      return h("li", {}, `${task.annotator_name}: ${STATE_NAMES[task.state] ?? task.state} `, reopen);
    });
    return h("div", { class: "all-tasks" }, h("h3", {}, "All assignments"), h("ul", {}, rows));
  }
}
