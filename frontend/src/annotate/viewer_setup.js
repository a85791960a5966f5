// OpenSeadragon for annotating: the slide viewer's settings, with click-to-zoom off (a click
// adds a vertex or selects a shape) and the µm scale bar.
import { createViewer } from "../osd_viewer.js";

/**
 * @param {HTMLElement} el  carries data-dzi-url, data-osd-images and data-mpp-x
 * @returns {Promise<OpenSeadragon.Viewer>} resolves once the slide is open
 */
export function openViewer(el) {
  const viewer = createViewer(el, {
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false },
    gestureSettingsTouch: { clickToZoom: false, dblClickToZoom: false },
  });
  return new Promise((resolve, reject) => {
    viewer.addOnceHandler("open", () => resolve(viewer));
    viewer.addOnceHandler("open-failed", (event) => reject(new Error(`The slide could not be opened: ${event.message}`)));
  });
}
