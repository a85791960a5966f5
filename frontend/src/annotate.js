// Entry point of /slides/<id>/annotate/: the annotation workspace for one stage of one slide.
import { AnnotatePage } from "./annotate/app.js";

const root = document.getElementById("annotate");
if (root) {
  new AnnotatePage(root).start().catch((error) => {
    root.dataset.state = "failed";
    const note = document.createElement("p");
    note.className = "error-text";
    note.setAttribute("data-testid", "page-error");
    note.textContent = `The annotation workspace could not start: ${error.message}`;
    root.querySelector("[data-panel=save]").prepend(note);
    throw error;
  });
}
