// OpenSeadragon for annotating: the slide viewer's settings, with click-to-zoom off (a click
// adds a vertex or selects a shape) and the µm scale bar.
import OpenSeadragon from "openseadragon";
import { ScaleBar } from "../scalebar.js";

/**
 * @param {HTMLElement} el  carries data-dzi-url, data-osd-images and data-mpp-x
 * @returns {Promise<OpenSeadragon.Viewer>} resolves once the slide is open
 */
export function openViewer(el) {
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
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false },
    gestureSettingsTouch: { clickToZoom: false, dblClickToZoom: false },
  });
  const mpp = parseFloat(el.dataset.mppX);
  new ScaleBar(viewer, Number.isFinite(mpp) && mpp > 0 ? mpp : null);
  el.viewer = viewer;
  return new Promise((resolve, reject) => {
    viewer.addOnceHandler("open", () => resolve(viewer));
    viewer.addOnceHandler("open-failed", (event) => reject(new Error(`The slide could not be opened: ${event.message}`)));
  });
}
