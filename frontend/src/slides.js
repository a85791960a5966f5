// The slide list: while any slide is still being ingested, poll its status and refresh the
// page when one finishes, so a user sees "ready" or the failure reason without reloading.
import { bindAnalyseButtons } from "./analysis/list_buttons.js";

const POLL_MS = 3000;

async function statusOf(id) {
  const response = await fetch(`/api/slides/${id}/`, { credentials: "same-origin" });
  if (!response.ok) return null;
  return (await response.json()).status;
}

async function poll() {
  const pending = [...document.querySelectorAll("tr.slide[data-status='pending']")];
  if (pending.length === 0) return;
  const statuses = await Promise.all(pending.map((row) => statusOf(row.dataset.slideId)));
  if (statuses.some((s) => s && s !== "pending")) {
    window.location.reload();
    return;
  }
  setTimeout(poll, POLL_MS);
}

setTimeout(poll, POLL_MS);
bindAnalyseButtons();
