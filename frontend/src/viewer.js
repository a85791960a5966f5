// The slide viewer page: OpenSeadragon over the app's Deep Zoom endpoints.
import OpenSeadragon from "openseadragon";
import { ScaleBar } from "./scalebar.js";

function start(el) {
  if (el.dataset.status !== "ready") return null;
  const viewer = OpenSeadragon({
    element: el,
    tileSources: el.dataset.dziUrl,
    prefixUrl: el.dataset.osdImages,
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    crossOriginPolicy: false,
    loadTilesWithAjax: true,
    ajaxWithCredentials: true,
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.5,
    animationTime: 0.6,
    imageLoaderLimit: 8,
    timeout: 60000,
    drawer: "canvas",
  });
  const mpp = parseFloat(el.dataset.mppX);
  new ScaleBar(viewer, Number.isFinite(mpp) && mpp > 0 ? mpp : null);
  viewer.addHandler("open-failed", (event) => {
    const note = document.createElement("p");
    note.className = "error-text viewer-error";
    note.textContent = `The slide could not be opened: ${event.message}`;
    el.appendChild(note);
  });
  // Tests and the annotation layer reach the viewer through the element.
  el.viewer = viewer;
  window.bmadccViewer = viewer;
  return viewer;
}

const el = document.getElementById("viewer");
if (el) start(el);
