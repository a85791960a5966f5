// One keymap per page: single keys (no Ctrl/Alt/Meta) to actions, ignored while typing.
// Keys are KeyboardEvent.key values ("n", "ArrowRight", "Escape", "Delete", ...), matched
// case-insensitively for letters.

export class Keymap {
  constructor(target = document) {
    this.bindings = new Map();
    this.enabled = true;
    target.addEventListener("keydown", (event) => this.dispatch(event));
  }

  /** Bind `keys` (one key or a list) to `action(event)`; later bindings replace earlier ones. */
  bind(keys, action, description = "") {
    for (const key of [].concat(keys)) this.bindings.set(normalise(key), { action, description });
    return this;
  }

  unbind(keys) {
    for (const key of [].concat(keys)) this.bindings.delete(normalise(key));
  }

  has(key) {
    return this.bindings.has(normalise(key));
  }

  dispatch(event) {
    if (!this.enabled || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    const binding = this.bindings.get(normalise(event.key));
    if (!binding) return;
    event.preventDefault();
    binding.action(event);
  }
}

function normalise(key) {
  return key.length === 1 ? key.toLowerCase() : key;
}

function isTyping(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
}
