// The report's review: the slide viewer beside the gallery. When a crop is selected (a click,
// the arrows, or the move after a key), the gallery sends "report:select-cell" with the cell's
// box (XYXY level-0 px), and the viewer jumps to it and frames it with a marker.
import { createViewer } from "./osd_viewer.js";

// How much of the slide around the cell the viewer shows: the box times this, each way.
const CONTEXT = 8;

function start(el) {
  const viewer = createViewer(el, { showNavigator: false, animationTime: 0.3 });
  const marker = document.createElement("div");
  marker.className = "cell-marker";
  let pending = null;
  let opened = false;

  function jump({ id, box }) {
    if (!box) return;
    if (!opened) { pending = { id, box }; return; }
    const [x0, y0, x1, y1] = box;
    const w = Math.max(x1 - x0, 1), h = Math.max(y1 - y0, 1);
    const side = Math.max(w, h) * CONTEXT;
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const view = viewer.viewport.imageToViewportRectangle(cx - side / 2, cy - side / 2, side, side);
    viewer.viewport.fitBounds(view);
    const cell = viewer.viewport.imageToViewportRectangle(x0, y0, w, h);
    if (viewer.getOverlayById(marker)) viewer.updateOverlay(marker, cell);
    else viewer.addOverlay({ element: marker, location: cell });
    // Tests read where the viewer went: the cell's id and the centre it was given (level-0 px).
    el.dataset.cell = String(id);
    el.dataset.centre = `${Math.round(cx)},${Math.round(cy)}`;
  }

  viewer.addHandler("open", () => {
    opened = true;
    if (pending) jump(pending);
  });
  document.addEventListener("report:select-cell", (event) => jump(event.detail));
  // A cell selected before this module ran is on the gallery's element.
  const review = document.getElementById("review");
  if (review?.dataset.selectedBox) {
    pending = { id: Number(review.dataset.selected), box: JSON.parse(review.dataset.selectedBox) };
  }
  window.bmadccViewer = viewer;
}

const el = document.getElementById("report-viewer");
if (el) start(el);
