// dfdetect's page: uploads one video to /v1/predict (XMLHttpRequest, for upload progress) and shows the
// verdict. Everything comes from this server; images arrive as blob: URLs so a token can be sent with them.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("upload"), fileInput = $("file"), drop = $("drop");
let authRequired = false;
let blobUrls = [];

function setState(state, text, isError) {
  form.dataset.state = state;
  const s = $("status");
  s.textContent = text || "";
  s.className = isError ? "error" : "";
}

function authHeaders() {
  const t = $("token").value.trim();
  return authRequired && t ? { Authorization: "Bearer " + t } : {};
}

function pct(x) { return x == null ? "n/a" : (100 * x).toFixed(0) + "%"; }
function num(x) { return x == null ? "n/a" : Number(x).toFixed(3); }

function li(list, text) {
  const el = document.createElement("li");
  el.textContent = text;
  list.appendChild(el);
}

function scoreRow(body, name, value) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = name;
  const td = document.createElement("td");
  td.textContent = num(value);
  const bar = document.createElement("td");
  if (value != null) {
    const m = document.createElement("meter");
    m.min = 0; m.max = 1; m.value = value; m.low = 0.3; m.high = 0.5; m.optimum = 0;
    m.setAttribute("aria-label", name + " " + num(value));
    bar.appendChild(m);
  }
  tr.append(th, td, bar);
  body.appendChild(tr);
}

// The per-frame fake score as an SVG line, fake segments shaded: readable without the explanation images.
function drawTrack(v) {
  const box = $("track");
  box.textContent = "";
  const fake = (v.track && v.track.fake) || [];
  const fps = (v.track && v.track.fps) || 1;
  if (!fake.length) {
    box.setAttribute("aria-label", "no timeline: nothing was scored");
    box.textContent = "No timeline: nothing was scored.";
    return;
  }
  const ns = "http://www.w3.org/2000/svg", W = 600, H = 120, seconds = fake.length / fps;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  for (const s of v.segments || []) {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", (W * s.start / seconds).toFixed(1));
    r.setAttribute("width", Math.max(1, W * (s.end - s.start) / seconds).toFixed(1));
    r.setAttribute("y", 0); r.setAttribute("height", H);
    r.setAttribute("fill", "rgba(176,0,32,0.2)");
    svg.appendChild(r);
  }
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", fake.map((y, k) => `${(W * (k + 0.5) / fake.length).toFixed(1)},${(H - H * y).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "currentColor"); line.setAttribute("stroke-width", "2");
  const mid = document.createElementNS(ns, "line");
  mid.setAttribute("x1", 0); mid.setAttribute("x2", W); mid.setAttribute("y1", H / 2); mid.setAttribute("y2", H / 2);
  mid.setAttribute("stroke", "grey"); mid.setAttribute("stroke-dasharray", "4 4");
  svg.append(mid, line);
  box.appendChild(svg);
  box.setAttribute("aria-label", `per-frame fake score over ${seconds.toFixed(1)} seconds, ` +
    `${(v.segments || []).length} fake segment(s)`);
}

async function loadImage(img, url) {
  const r = await fetch(url, { headers: authHeaders() });
  if (!r.ok) throw new Error("image " + r.status);
  const u = URL.createObjectURL(await r.blob());
  blobUrls.push(u);
  await new Promise((ok, bad) => { img.onload = ok; img.onerror = bad; img.src = u; });
}

async function show(v) {
  blobUrls.forEach((u) => URL.revokeObjectURL(u));
  blobUrls = [];
  const label = $("label");
  label.textContent = v.label || v.status;
  label.className = v.label || "";
  $("summary").textContent = v.score == null
    ? "Nothing could be scored."
    : `Fake score ${num(v.score)} (calibrated probability ${pct(v.probability)}).` +
      (v.in_distribution === false ? " This video is unlike the model's training data: do not rely on the score." : "");
  $("notes").textContent = v.reason || "";
  const body = $("scores").tBodies[0];
  body.textContent = "";
  scoreRow(body, "Overall", v.score);
  scoreRow(body, "Face (video)", v.video_fake);
  scoreRow(body, "Voice (audio)", v.audio_fake);
  scoreRow(body, "Face-voice mismatch", v.av_mismatch);
  drawTrack(v);
  const segs = $("segments");
  segs.textContent = "";
  for (const s of v.segments || []) {
    li(segs, `Fake from ${s.start.toFixed(2)} s to ${s.end.toFixed(2)} s (${s.modality}, score ${num(s.score)})`);
  }
  if (v.score != null && !(v.segments || []).length) li(segs, "No fake segment found.");
  const seen = $("seen");
  seen.textContent = "";
  li(seen, `A face in ${pct(v.face_ratio)} of frames`);
  li(seen, v.has_audio ? "Audio: yes" : "Audio: none (scored on the face only)");
  li(seen, `${v.windows} one-second windows scored` + (v.windows_skipped ? `, ${v.windows_skipped} left out (too little face)` : ""));
  const faces = v.faces || [];
  if (faces.length > 1) {  // several people: each face's score, and which one the verdict is about
    for (const f of faces) {
      li(seen, `Face ${f.face}${f.where ? ` (${f.where})` : ""}: ` +
        (f.score == null ? (f.note || "not scored") : `score ${num(f.score)}, ${f.label}`) +
        (f.face === v.face ? " \u2014 the verdict above is this face's" : ""));
    }
  }
  li(seen, `Took ${Number(v.seconds).toFixed(1)} s`);
  $("result").hidden = false;
  const ex = v.explanations || {};
  $("explanations").hidden = !Object.keys(ex).length;
  const jobs = [];
  for (const kind of ["timeline", "faces", "spectrogram"]) {
    const img = $("img-" + kind);
    img.parentElement.hidden = !ex[kind];
    img.removeAttribute("src");
    if (ex[kind]) jobs.push(loadImage(img, ex[kind]));
  }
  await Promise.allSettled(jobs);
}

function upload(file) {
  if (!file) return;
  const data = new FormData();
  data.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  const explain = $("explain").checked ? "?explain=true" : "";
  xhr.open("POST", "/v1/predict" + explain);
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.responseType = "json";
  const bar = $("progress");
  $("progress-row").hidden = false;
  $("progress-label").textContent = "Uploading";
  bar.value = 0;
  $("go").disabled = true;
  $("result").hidden = true;
  setState("uploading", "Uploading " + file.name + "…");
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  xhr.upload.onload = () => {
    bar.value = 100;
    $("progress-label").textContent = "Uploaded";
    setState("scoring", "Uploaded. Checking the face and the voice…");
  };
  xhr.onerror = () => { $("go").disabled = false; setState("error", "The upload failed (network error).", true); };
  xhr.onload = async () => {
    $("go").disabled = false;
    const v = xhr.response || {};
    if (xhr.status === 200) {
      await show(v);
      setState("done", "Done.");
    } else {
      const wait = xhr.getResponseHeader("Retry-After");
      setState("error", `Not checked (${xhr.status}): ${v.reason || "unknown error"}` +
        (wait ? ` Try again in ${wait} s.` : ""), true);
    }
  };
  xhr.send(data);
}

form.addEventListener("submit", (e) => { e.preventDefault(); upload(fileInput.files[0]); });
fileInput.addEventListener("change", () => {
  const f = fileInput.files[0];
  $("chosen").textContent = f ? `Chosen: ${f.name} (${(f.size / 1048576).toFixed(1)} MB)` : "";
});
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => {
  const f = e.dataTransfer && e.dataTransfer.files[0];
  if (f) { fileInput.files = e.dataTransfer.files; fileInput.dispatchEvent(new Event("change")); upload(f); }
});

fetch("/v1/health").then((r) => r.json()).then((h) => {
  authRequired = !!h.auth;
  $("token-row").hidden = !authRequired;
  form.dataset.ready = "1";
}).catch(() => setState("error", "The server does not answer.", true));
