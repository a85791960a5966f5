// Rasterises shapes into one snapshot bitmap. Pure drawing code, shared by the overlay's worker
// (OffscreenCanvas) and its main-thread fallback.
//
// Snapshot frame: `snap = {x, y, scale, w, h, dpr}`: (x, y) is the level-0 px at the bitmap's
// top-left corner, `scale` is CSS px per level-0 px, (w, h) the size in CSS px; the bitmap holds
// w*dpr x h*dpr device px.

/**
 * A shape to draw. `ring` is flat [x0, y0, x1, y1, ...] in level-0 px (not repeated at the end);
 * `bbox` is XYXY level-0 px. `fill` null means outline only.
 * @typedef {{id: (string|number), ring: ArrayLike<number>, bbox: number[], stroke: string,
 *   fill: (string|null), fillAlpha?: number, dash?: boolean, text?: string}} Shape
 */

// Shapes smaller than this on screen are drawn as a dot: at slide overview, 5,000 outlines of
// 3 px would be 200,000 invisible line segments.
const DOT_BELOW_PX = 3;

/** Draws every shape of `shapes` that overlaps the snapshot, except ids in `hidden`. */
export function drawSnapshot(ctx, shapes, snap, hidden) {
  const { dpr } = snap;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const groups = groupVisible(shapes, snap, hidden);
  const texts = [];
  ctx.lineJoin = "round";
  for (const group of groups.values()) drawGroup(ctx, group, snap, texts);
  drawTexts(ctx, texts, snap);
}

/** Visible shapes, grouped by style so that each group is filled and stroked as one path. */
function groupVisible(shapes, snap, hidden) {
  const x1 = snap.x + snap.w / snap.scale;
  const y1 = snap.y + snap.h / snap.scale;
  const groups = new Map();
  for (const shape of shapes) {
    const b = shape.bbox;
    if (b[2] < snap.x || b[0] > x1 || b[3] < snap.y || b[1] > y1) continue;
    if (hidden?.has(shape.id)) continue;
    const key = `${shape.stroke}|${shape.fill}|${shape.fillAlpha ?? 0.2}|${shape.dash ? 1 : 0}`;
    let group = groups.get(key);
    if (!group) {
      group = { style: shape, shapes: [] };
      groups.set(key, group);
    }
    group.shapes.push(shape);
  }
  return groups;
}

function drawGroup(ctx, { style, shapes }, snap, texts) {
  ctx.beginPath();
  for (const shape of shapes) {
    if (tracePath(ctx, shape, snap) && shape.text) texts.push(shape);
  }
  if (style.fill) {
    ctx.globalAlpha = style.fillAlpha ?? 0.2;
    ctx.fillStyle = style.fill;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
  ctx.setLineDash(style.dash ? [4, 3] : []);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = style.stroke;
  ctx.stroke();
}

/** Adds one shape to the current path in snapshot px; returns false when drawn as a dot. */
function tracePath(ctx, shape, snap) {
  const { x, y, scale } = snap;
  const b = shape.bbox;
  if ((b[2] - b[0]) * scale < DOT_BELOW_PX && (b[3] - b[1]) * scale < DOT_BELOW_PX) {
    const cx = ((b[0] + b[2]) / 2 - x) * scale;
    const cy = ((b[1] + b[3]) / 2 - y) * scale;
    ctx.rect(cx - 1, cy - 1, 2, 2);
    return false;
  }
  const ring = shape.ring;
  let px = (ring[0] - x) * scale;
  let py = (ring[1] - y) * scale;
  ctx.moveTo(px, py);
  for (let i = 2; i < ring.length; i += 2) {
    const qx = (ring[i] - x) * scale;
    const qy = (ring[i + 1] - y) * scale;
    // A vertex within a pixel of the last one drawn adds nothing visible.
    if (Math.abs(qx - px) < 1 && Math.abs(qy - py) < 1) continue;
    ctx.lineTo(qx, qy);
    px = qx;
    py = qy;
  }
  ctx.closePath();
  return true;
}

function drawTexts(ctx, shapes, snap) {
  ctx.setLineDash([]);
  ctx.font = "600 13px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.lineWidth = 3;
  for (const shape of shapes) {
    const b = shape.bbox;
    if ((b[2] - b[0]) * snap.scale < 48) continue;
    const cx = ((b[0] + b[2]) / 2 - snap.x) * snap.scale;
    const cy = ((b[1] + b[3]) / 2 - snap.y) * snap.scale;
    ctx.strokeStyle = "rgba(255,255,255,.9)";
    ctx.strokeText(shape.text, cx, cy);
    ctx.fillStyle = shape.stroke;
    ctx.fillText(shape.text, cx, cy);
  }
}
