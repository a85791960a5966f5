// The slide list's "Analyse" buttons: start a run, then open the viewer, which shows its
// progress live. A refusal (e.g. 409 for a slide not ready) is shown beside the button.
import { api } from "../annotate/api.js";

export function bindAnalyseButtons(root = document) {
  for (const button of root.querySelectorAll("button[data-analyse]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("/api/analyses/", { method: "POST", body: { slide: Number(button.dataset.analyse) } });
        window.location.href = button.dataset.viewer;
      } catch (error) {
        button.disabled = false;
        button.title = error.message;
        button.textContent = `analyse (${error.message})`;
      }
    });
  }
}
