// Never lose work: every edit becomes an operation in a FIFO queue that is mirrored to
// localStorage, sent one at a time, retried with backoff while the server is unreachable, and
// stopped, never overwritten, when the server says the edit was stale (409).
//
// Operations (ids are server ids or the store's "tmp-…" ids):
//   {kind: "create", id, body: {geometry?, label, tile_col?, tile_row?}, item}
//   {kind: "update", id, changes: {geometry?, label?}, local: {ring?, label?}}
//   {kind: "delete", id}
// `item` and `local` are the store-side effect, re-applied when a later visit restores the queue.
// The store already shows an operation's effect when it is queued (optimistic); the queue only
// brings the server along, and undoes the local effect of an edit the server rejects (400/403).
import { api, ApiError } from "./api.js";

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

export class SaveQueue extends EventTarget {
  /**
   * @param {object} deps
   * @param {string} deps.storageKey   localStorage key (per user, slide and stage)
   * @param {import("./store.js").AnnotationStore} deps.store
   * @param {() => Promise<number>} deps.ensureSet  resolves to the caller's own set id
   */
  constructor({ storageKey, store, ensureSet }) {
    super();
    this.storageKey = storageKey;
    this.store = store;
    this.ensureSet = ensureSet;
    this.ops = [];
    this.ids = new Map(); // tmp id -> server id, once created
    this.versions = new Map(); // server id -> server version our next edit is based on
    this.running = false;
    this.attempt = 0;
    this.timer = 0;
    this.status = "saved";
    this.lastError = "";
    this.conflicts = [];
  }

  get pending() {
    return this.ops.length;
  }

  // -- queueing -----------------------------------------------------------------------------
  /** `item`: the store item just added under its tmp id; `body`: what the API needs. */
  create(item, body) {
    this.push({ kind: "create", id: item.id, body, item: { ...item } });
  }

  /** `changes`: API fields (geometry, label); `local`: the same in store form (ring, label). */
  update(id, changes, local = {}) {
    this.track(id);
    const create = this.ops.find((op) => op.kind === "create" && op.id === id && !op.sending);
    if (create) {
      // Not sent yet: the shape is created with the change already in it.
      Object.assign(create.body, changes);
      Object.assign(create.item, local);
      this.changed();
      return;
    }
    const last = this.ops[this.ops.length - 1];
    // Consecutive edits of one shape travel as one request (not the one already in flight).
    if (last && last.kind === "update" && last.id === id && !last.sending) {
      Object.assign(last.changes, changes);
      Object.assign(last.local, local);
      this.changed();
      return;
    }
    this.push({ kind: "update", id, changes: { ...changes }, local: { ...local } });
  }

  delete(id) {
    this.track(id);
    const queuedCreate = this.ops.find((op) => op.kind === "create" && op.id === id && !op.sending);
    if (queuedCreate) {
      // Never saved: forget it instead of creating and deleting it.
      this.ops = this.ops.filter((op) => op.id !== id);
      this.changed();
      return;
    }
    this.push({ kind: "delete", id });
  }

  track(id) {
    if (typeof id === "number" && !this.versions.has(id)) {
      const item = this.store.get(id);
      if (item) this.versions.set(id, item.version);
    }
  }

  push(op) {
    this.ops.push(op);
    this.changed();
    this.kick();
  }

  // -- persistence --------------------------------------------------------------------------
  save() {
    const data = {
      ops: this.ops.map(({ sending, ...op }) => op),
      ids: [...this.ids],
      versions: [...this.versions],
    };
    try {
      if (this.ops.length) localStorage.setItem(this.storageKey, JSON.stringify(data));
      else localStorage.removeItem(this.storageKey);
    } catch (error) {
      // A full or disabled localStorage must not stop saving to the server.
      console.warn("could not keep unsaved edits in localStorage", error);
    }
  }

  /** After the store is loaded from the server: re-apply and resend edits of an earlier visit. */
  restore() {
    let data = null;
    try {
      data = JSON.parse(localStorage.getItem(this.storageKey) || "null");
    } catch {
      data = null;
    }
    if (!data || !Array.isArray(data.ops)) return 0;
    this.ids = new Map(data.ids);
    this.versions = new Map(data.versions);
    this.ops = data.ops;
    this.reapplyPending();
    this.changed();
    this.kick();
    return this.ops.length;
  }

  /** The store was reloaded from the server: show the edits that are still on their way. */
  reapplyPending() {
    for (const op of this.ops) this.reapply(op);
  }

  reapply(op) {
    const id = this.ids.get(op.id) ?? op.id;
    if (op.kind === "create" && !this.store.get(id)) this.store.put(op.item);
    if (op.kind === "update") this.store.patch(id, op.local ?? {});
    if (op.kind === "delete") this.store.remove(id);
  }

  // -- sending ------------------------------------------------------------------------------
  kick() {
    if (this.running || this.timer) return;
    this.running = true;
    this.drain().finally(() => {
      this.running = false;
    });
  }

  async drain() {
    while (this.ops.length) {
      const op = this.ops[0];
      op.sending = true;
      this.setStatus("saving");
      try {
        await this.send(op);
        this.ops.shift();
        this.attempt = 0;
        this.changed();
      } catch (error) {
        op.sending = false;
        if (!this.handle(op, error)) return;
      }
    }
    this.setStatus("saved");
  }

  async send(op) {
    const id = this.ids.get(op.id) ?? op.id;
    if (op.kind === "create") {
      const set = await this.ensureSet();
      const row = await api("/api/annotations/", { method: "POST", body: { set, ...op.body } });
      this.ids.set(op.id, row.id);
      this.versions.set(row.id, row.version);
      // Deleted locally while the create was in flight: the queued delete follows.
      if (this.store.get(op.id)) this.store.rename(op.id, row);
      return;
    }
    const version = this.versions.get(id);
    if (op.kind === "update") {
      const row = await api(`/api/annotations/${id}/`, {
        method: "PATCH",
        body: { version, ...op.changes },
      });
      this.versions.set(id, row.version);
      const item = this.store.get(id);
      if (item) this.store.put({ ...item, version: row.version });
      return;
    }
    await api(`/api/annotations/${id}/?version=${version}`, { method: "DELETE" });
    this.versions.delete(id);
  }

  /** Returns whether draining may continue with the next operation. */
  handle(op, error) {
    if (!(error instanceof ApiError)) {
      // A bug, not the network: keep the edit (it may still be saved) but say so loudly.
      console.error("saving an annotation failed", error);
    }
    if (!(error instanceof ApiError) || error.transient) {
      this.retryLater(error);
      return false;
    }
    const later = this.dropWithFollowers(op);
    if (error.status === 409 && error.body?.current) {
      this.conflicts.push({ op, later, current: error.body.current, message: error.message });
      this.dispatchEvent(new CustomEvent("conflict", { detail: this.conflicts.at(-1) }));
    } else {
      this.dispatchEvent(new CustomEvent("rejected", { detail: { op, error } }));
      this.revert(op);
    }
    this.lastError = error.message;
    this.changed();
    return true;
  }

  retryLater(error) {
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.lastError = error.message;
    this.setStatus("retrying");
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.kick();
    }, wait);
  }

  /** Retry now (the "retry" button, or the browser coming back online). */
  retryNow() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = 0;
    this.kick();
  }

  /** Removes `op` and every later operation on the same shape; returns the later ones. */
  dropWithFollowers(op) {
    const later = this.ops.filter((other) => other !== op && other.id === op.id);
    this.ops = this.ops.filter((other) => other.id !== op.id);
    return later;
  }

  /** The server refused an edit for good: show the server's state again. */
  async revert(op) {
    const id = this.ids.get(op.id) ?? op.id;
    if (op.kind === "create") {
      this.store.remove(op.id);
      return;
    }
    try {
      const row = await api(`/api/annotations/${id}/`);
      if (row.is_deleted) this.store.remove(id);
      else this.store.put(this.store.fromServer(row));
      this.versions.set(id, row.version);
    } catch (error) {
      console.warn(`could not reload annotation ${id}`, error);
    }
  }

  // -- conflicts ----------------------------------------------------------------------------
  /** Take the server's version of a conflicted shape and drop the local edits. */
  keepTheirs(conflict) {
    this.forget(conflict);
    const { current } = conflict;
    const localId = this.ids.get(conflict.op.id) ?? conflict.op.id;
    if (localId !== current.id) this.store.remove(localId);
    if (current.is_deleted) this.store.remove(current.id);
    else this.store.put(this.store.fromServer(current));
    this.versions.set(current.id, current.version);
  }

  /** Re-apply the local edits on top of the server's current version. */
  keepMine(conflict) {
    this.forget(conflict);
    const { current, op, later } = conflict;
    this.versions.set(current.id, current.version);
    const localId = this.ids.get(op.id) ?? op.id;
    if (op.kind === "create") {
      // The tile (TOI) was labelled elsewhere first: relabel that annotation instead.
      this.ids.set(op.id, current.id);
      const item = this.store.get(localId);
      this.store.rename(localId, current);
      if (item) this.update(current.id, { label: item.label }, { label: item.label });
    } else if (op.kind === "delete") {
      this.push({ kind: "delete", id: current.id });
    } else {
      const changes = Object.assign({}, op.changes, ...later.map((o) => o.changes || {}));
      const local = Object.assign({}, op.local, ...later.map((o) => o.local || {}));
      this.store.patch(current.id, local);
      this.update(current.id, changes, local);
    }
  }

  forget(conflict) {
    this.conflicts = this.conflicts.filter((c) => c !== conflict);
    this.changed();
  }

  // -- state --------------------------------------------------------------------------------
  changed() {
    this.save();
    if (!this.ops.length && this.status !== "retrying") this.status = "saved";
    this.dispatchEvent(new CustomEvent("state"));
  }

  setStatus(status) {
    this.status = status;
    this.dispatchEvent(new CustomEvent("state"));
  }
}
