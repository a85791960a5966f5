// The slide viewer page: OpenSeadragon over the app's Deep Zoom endpoints.
import { AnalysisPanel } from "./analysis/panel.js";
import { createViewer } from "./osd_viewer.js";

function start(el) {
  if (el.dataset.status !== "ready") return null;
  const viewer = createViewer(el);
  viewer.addHandler("open-failed", (event) => {
    const note = document.createElement("p");
    note.className = "error-text viewer-error";
    note.textContent = `The slide could not be opened: ${event.message}`;
    el.appendChild(note);
  });
  // Tests and the annotation layer reach the viewer through the element and the window.
  window.bmadccViewer = viewer;
  return viewer;
}

const el = document.getElementById("viewer");
const viewer = el ? start(el) : null;
const panel = document.getElementById("analysis");
if (viewer && panel) new AnalysisPanel(panel, viewer).load();
