// Entry point of /slides/<id>/gallery/: crops of the slide's cells, reclassified with one key.
import { CellGallery } from "./annotate/gallery_grid.js";

const root = document.getElementById("gallery");
if (root) {
  new CellGallery(root).start().catch((error) => {
    root.dataset.state = "failed";
    const note = document.createElement("p");
    note.className = "error-text";
    note.setAttribute("data-testid", "page-error");
    note.textContent = `The gallery could not start: ${error.message}`;
    root.prepend(note);
    throw error;
  });
}
