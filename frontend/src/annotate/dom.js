// A tiny element builder: h("button", {class: "x", onclick: fn}, "Text", child, ...).
// Text is always set as text (never parsed as HTML), so server strings cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(node.style, value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Runs `fn` at most once per animation frame, however often it is asked for. */
export function perFrame(fn) {
  let queued = 0;
  return () => {
    if (queued) return;
    queued = requestAnimationFrame(() => {
      queued = 0;
      fn();
    });
  };
}
