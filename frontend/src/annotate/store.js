// The page's annotations, as the user sees them: server state plus edits not yet saved.
// Ids are server ids (numbers) or "tmp-N" for shapes created locally and not saved yet.
import { areaPx, bboxOf, contains, ringOf } from "./geometry.js";

/**
 * @typedef {object} Item
 * @property {number|string} id
 * @property {number|null} set         annotation set id (null until the own set exists)
 * @property {number[][]} ring         open ring, level-0 px
 * @property {number[]} bbox           XYXY level-0 px
 * @property {string} label
 * @property {number|null} tile_col
 * @property {number|null} tile_row
 * @property {number} version          the server's version this item is based on (0: unsaved)
 * @property {number|null} annotator
 * @property {boolean} own             the current user's own set: editable
 */

export class AnnotationStore extends EventTarget {
  constructor(userId) {
    super();
    this.userId = userId;
    /** @type {Map<number|string, Item>} */
    this.items = new Map();
    this.nextTmp = 1;
  }

  /** Replace everything with the server's compact list ({id, set, geometry, label, ...}). */
  load(rows) {
    this.items = new Map(rows.map((row) => [row.id, this.fromServer(row)]));
    this.dispatchEvent(new CustomEvent("reset"));
  }

  fromServer(row) {
    const ring = ringOf(row.geometry);
    return {
      id: row.id,
      set: row.set,
      ring,
      bbox: bboxOf(ring),
      label: row.label ?? "",
      tile_col: row.tile_col ?? null,
      tile_row: row.tile_row ?? null,
      version: row.version,
      annotator: row.annotator ?? null,
      own: row.annotator === this.userId,
    };
  }

  get(id) {
    return this.items.get(id);
  }

  all() {
    return [...this.items.values()];
  }

  newTmpId() {
    // Unique across reloads too: queued creates survive in localStorage under their tmp id.
    return `tmp-${Date.now().toString(36)}-${(this.nextTmp++).toString(36)}`;
  }

  /** Insert or replace an item and tell listeners. */
  put(item) {
    const ring = item.ring;
    const full = { ...item, bbox: bboxOf(ring) };
    this.items.set(full.id, full);
    this.emit(full.id, full);
    return full;
  }

  /** Apply a local change (label and/or ring) to an item. */
  patch(id, changes) {
    const item = this.items.get(id);
    if (!item) return null;
    return this.put({ ...item, ...changes });
  }

  remove(id) {
    if (this.items.delete(id)) this.emit(id, null);
  }

  /** A tmp item was saved: it takes its server id (and version) from now on. */
  rename(tmpId, row) {
    const item = this.items.get(tmpId);
    this.items.delete(tmpId);
    const saved = { ...(item || this.fromServer(row)), id: row.id, set: row.set, version: row.version };
    this.items.set(saved.id, saved);
    // "renamed" first, so that a selection follows the shape before the tmp id disappears.
    this.dispatchEvent(new CustomEvent("renamed", { detail: { from: tmpId, to: row.id } }));
    this.emit(tmpId, null);
    this.emit(saved.id, saved);
    return saved;
  }

  emit(id, item) {
    this.dispatchEvent(new CustomEvent("change", { detail: { id, item } }));
  }

  /** The smallest item containing (x, y) (level-0 px), optionally only own ones. */
  hit(x, y, { ownOnly = false } = {}) {
    let best = null;
    let bestArea = Infinity;
    for (const item of this.items.values()) {
      if (ownOnly && !item.own) continue;
      const b = item.bbox;
      if (x < b[0] || x > b[2] || y < b[1] || y > b[3]) continue;
      if (!contains(item.ring, x, y)) continue;
      const area = areaPx(item.ring);
      if (area < bestArea) {
        best = item;
        bestArea = area;
      }
    }
    return best;
  }
}
