// One OpenSeadragon set-up for every page that shows a slide: the app's Deep Zoom endpoints,
// a navigator and the µm scale bar. Pages pass what differs (e.g. click-to-zoom off).
import OpenSeadragon from "openseadragon";
import { ScaleBar } from "./scalebar.js";

/**
 * @param {HTMLElement} el  carries data-dzi-url, data-osd-images and data-mpp-x
 * @param {object} extra    OpenSeadragon options that override the defaults
 */
export function createViewer(el, extra = {}) {
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
    ...extra,
  });
  const mpp = parseFloat(el.dataset.mppX);
  new ScaleBar(viewer, Number.isFinite(mpp) && mpp > 0 ? mpp : null);
  el.viewer = viewer;
  return viewer;
}
