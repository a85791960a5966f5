// Polygon helpers. Every coordinate here is level-0 slide px; rings are [[x, y], ...] without
// the closing vertex unless a function says otherwise.

/** GeoJSON Polygon (level-0 px) -> open outer ring [[x, y], ...] (closing vertex dropped). */
export function ringOf(geometry) {
  const ring = geometry.coordinates[0].map(([x, y]) => [x, y]);
  const first = ring[0];
  const last = ring[ring.length - 1];
  if (ring.length > 1 && first[0] === last[0] && first[1] === last[1]) ring.pop();
  return ring;
}

/** Open ring -> GeoJSON Polygon, closed and rounded to 0.01 px. */
export function polygonOf(ring) {
  const coords = ring.map(([x, y]) => [round2(x), round2(y)]);
  coords.push([...coords[0]]);
  return { type: "Polygon", coordinates: [coords] };
}

function round2(v) {
  return Math.round(v * 100) / 100;
}

/** Open ring -> flat [x0, y0, x1, y1, ...] for the overlay. */
export function flatten(ring) {
  const flat = new Array(ring.length * 2);
  for (let i = 0; i < ring.length; i += 1) {
    flat[2 * i] = ring[i][0];
    flat[2 * i + 1] = ring[i][1];
  }
  return flat;
}

/** XYXY bounding box [minX, minY, maxX, maxY] of an open ring. */
export function bboxOf(ring) {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of ring) {
    if (x < minX) minX = x;
    if (y < minY) minY = y;
    if (x > maxX) maxX = x;
    if (y > maxY) maxY = y;
  }
  return [minX, minY, maxX, maxY];
}

/** Area of an open ring in level-0 px² (shoelace; always positive). */
export function areaPx(ring) {
  let twice = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    twice += (ring[j][0] + ring[i][0]) * (ring[j][1] - ring[i][1]);
  }
  return Math.abs(twice) / 2;
}

/** "0.123 mm²" when microns-per-pixel is known, else "12,345 px²". */
export function formatArea(px2, mpp) {
  if (mpp > 0) {
    const mm2 = (px2 * mpp * mpp) / 1e6;
    return `${mm2 < 0.01 ? mm2.toPrecision(2) : mm2.toFixed(3)} mm²`;
  }
  return `${Math.round(px2).toLocaleString("en-US")} px²`;
}

/** Ray casting: whether (x, y) lies inside the open ring. */
export function contains(ring, x, y) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Squared distance from (x, y) to the segment a-b. */
export function segmentDistance2(x, y, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / len2)) : 0;
  const px = a[0] + t * dx - x;
  const py = a[1] + t * dy - y;
  return px * px + py * py;
}

/** The rectangle [x, y, w, h] as an open ring, clockwise from the top-left corner. */
export function rectRing(x, y, w, h) {
  return [
    [x, y],
    [x + w, y],
    [x + w, y + h],
    [x, y + h],
  ];
}
