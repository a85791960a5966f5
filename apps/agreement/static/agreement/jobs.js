// Background jobs (apps.core.jobs rows) on a page: every element with data-job-url whose
// data-job-status is queued or running is polled once a second; its <progress> and
// .job-text follow the row, and the page reloads when the job ends if data-job-reload is set.
// watchJob() is the same polling for a script that wants the finished row instead.

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;

function render(element, job) {
  element.dataset.jobStatus = job.status;
  const bar = element.querySelector("progress");
  if (bar) {
    bar.max = Math.max(job.total, 1);
    bar.value = job.progress;
  }
  const text = element.querySelector(".job-text");
  if (text) {
    // The same words as the page's template (_job.html) writes before the first poll.
    const steps = job.total ? ` (${job.progress} of ${job.total})` : "";
    if (job.status === "queued") text.textContent = "Queued…";
    else if (job.status === "failed") text.textContent = `failed: ${job.error}`;
    else text.textContent = `${job.message || "Running…"}${steps}`;
  }
}

export async function watchJob(url, element = null) {
  for (;;) {
    const response = await fetch(url, { credentials: "same-origin" });
    const job = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(job.detail || `${response.status} ${response.statusText}`);
    if (element) render(element, job);
    if (!ACTIVE.has(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

for (const element of document.querySelectorAll("[data-job-url]")) {
  if (!ACTIVE.has(element.dataset.jobStatus)) continue;
  watchJob(element.dataset.jobUrl, element)
    .then(() => {
      if (element.dataset.jobReload) window.location.reload();
    })
    .catch((error) => {
      const text = element.querySelector(".job-text");
      if (text) text.textContent = `could not follow the job: ${error.message}`;
    });
}
