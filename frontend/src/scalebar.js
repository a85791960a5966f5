// A µm scale bar for OpenSeadragon, drawn from the slide's microns-per-pixel.
// It listens to the viewer's "update-viewport" and only rewrites one element's width and text.

const NICE = [1, 2, 5];

/** The largest "nice" length (1, 2, 5 × 10^k µm) whose bar fits in maxPx screen pixels. */
export function niceLength(micronsPerScreenPx, maxPx) {
  const maxMicrons = micronsPerScreenPx * maxPx;
  let best = null;
  for (let exp = -2; exp <= 6; exp += 1) {
    for (const n of NICE) {
      const microns = n * 10 ** exp;
      if (microns <= maxMicrons) best = microns;
    }
  }
  return best;
}

export function formatMicrons(microns) {
  if (microns >= 1000) return `${microns / 1000} mm`;
  return `${microns} µm`;
}

export class ScaleBar {
  constructor(viewer, mppX, { maxPx = 160 } = {}) {
    this.viewer = viewer;
    this.mppX = mppX;
    this.maxPx = maxPx;
    this.el = document.createElement("div");
    this.el.className = "scalebar";
    this.el.setAttribute("data-testid", "scalebar");
    this.bar = document.createElement("div");
    this.bar.className = "scalebar-bar";
    this.label = document.createElement("span");
    this.el.append(this.bar, this.label);
    viewer.container.appendChild(this.el);
    if (!mppX) {
      this.label.textContent = "no scale";
      this.el.classList.add("no-scale");
      return;
    }
    viewer.addHandler("update-viewport", () => this.update());
    viewer.addHandler("open", () => this.update());
  }

  update() {
    const item = this.viewer.world.getItemAt(0);
    if (!item) return;
    // Image (level-0) pixels per screen pixel at the current zoom.
    const zoom = item.viewportToImageZoom(this.viewer.viewport.getZoom(true));
    const micronsPerScreenPx = this.mppX / zoom;
    const microns = niceLength(micronsPerScreenPx, this.maxPx);
    if (!microns) return;
    this.bar.style.width = `${Math.round(microns / micronsPerScreenPx)}px`;
    this.label.textContent = formatMicrons(microns);
  }
}
