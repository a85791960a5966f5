// The keypad counter: a class hotkey counts one cell, Backspace undoes, the total runs, and a
// visible cue (plus a short tone where audio is allowed) marks 100, 200 and 300 cells. The
// whole sequence is saved after each key, so a reload resumes where the count was.
const root = document.getElementById("counter");
const classes = JSON.parse(root.dataset.classes);
const milestones = JSON.parse(root.dataset.milestones);
const byHotkey = Object.fromEntries(classes.map((c) => [c.hotkey, c.key]));
let sequence = JSON.parse(root.dataset.sequence);
let saving = Promise.resolve();

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function draw() {
  const tally = {};
  for (const key of sequence) tally[key] = (tally[key] || 0) + 1;
  for (const row of root.querySelectorAll("tr[data-key]")) {
    row.querySelector(".n").textContent = tally[row.dataset.key] || 0;
  }
  root.querySelector(".total").textContent = sequence.length;
}

function chime() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.15);
  } catch (e) { /* no audio: the visible cue is enough */ }
}

function save() {
  const body = JSON.stringify({ sequence });
  saving = saving.then(async () => {
    const response = await fetch(`/api/slides/${root.dataset.slide}/manual-count/`, {
      method: "PUT", credentials: "same-origin", body,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    });
    root.querySelector(".save-state").textContent = response.ok ? `saved (${JSON.parse(body).sequence.length})` : "not saved";
    root.dataset.saved = JSON.parse(body).sequence.length;
  });
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const cue = root.querySelector(".cue");
  if (event.key === "Backspace") {
    if (!sequence.length) return;
    sequence.pop();
    cue.textContent = "";
  } else if (byHotkey[event.key.toLowerCase()]) {
    sequence.push(byHotkey[event.key.toLowerCase()]);
    if (milestones.includes(sequence.length)) {
      cue.textContent = `${sequence.length} cells`;
      cue.dataset.milestone = sequence.length;
      chime();
    }
  } else {
    return;
  }
  event.preventDefault();
  draw();
  save();
});
draw();
