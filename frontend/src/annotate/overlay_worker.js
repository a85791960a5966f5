// The overlay's render worker: holds a copy of the shapes and rasterises snapshots on an
// OffscreenCanvas, so that drawing 5,000 polygons never blocks a pan/zoom frame.
//
// Messages in:  {type: "set", shapes} | {type: "upsert", shape} | {type: "upsertMany", shapes}
//               | {type: "remove", id}
//               | {type: "hidden", ids} | {type: "render", seq, snap}
// Messages out: {type: "frame", seq, snap, bitmap}  (bitmap: ImageBitmap, transferred)
import { drawSnapshot } from "./draw.js";

const shapes = new Map();
let hidden = new Set();
let canvas = null;
let ctx = null;

function render(seq, snap) {
  const w = Math.max(1, Math.round(snap.w * snap.dpr));
  const h = Math.max(1, Math.round(snap.h * snap.dpr));
  if (!canvas) {
    canvas = new OffscreenCanvas(w, h);
    ctx = canvas.getContext("2d");
  } else if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  drawSnapshot(ctx, shapes.values(), snap, hidden);
  const bitmap = canvas.transferToImageBitmap();
  self.postMessage({ type: "frame", seq, snap, bitmap }, [bitmap]);
}

self.onmessage = ({ data }) => {
  switch (data.type) {
    case "set":
      shapes.clear();
      for (const shape of data.shapes) shapes.set(shape.id, shape);
      break;
    case "upsert":
      shapes.set(data.shape.id, data.shape);
      break;
    case "upsertMany":
      for (const shape of data.shapes) shapes.set(shape.id, shape);
      break;
    case "remove":
      shapes.delete(data.id);
      break;
    case "hidden":
      hidden = new Set(data.ids);
      break;
    case "render":
      render(data.seq, data.snap);
      break;
    default:
      throw new Error(`overlay worker: unknown message ${data.type}`);
  }
};
