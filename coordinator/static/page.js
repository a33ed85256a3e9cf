// The web page: a portrait (checked for a face as soon as it is picked) or a saved avatar, a typed or recorded
// question, then the reply as it is made: progress per stage from the job's events, the transcript and the reply
// as soon as they are known, the video from its first segment (HLS), the MP4 to download, and the session's turns.

import { ApiError, apiKey, call, jobEvents, objectUrl } from "./api.js";
import { placeOf, wordsFor } from "./messages.js";
import { onFirstFrame, playStream } from "./player.js";

const $ = (id) => document.getElementById(id);
const STAGE_WORDS = { asr: "Listening", llm: "Thinking", tts: "Speaking", animation: "Animating" };
const STAGES_OF = { chat: ["llm", "tts", "animation"], speak: ["tts", "animation"], lipsync: ["animation"] };
const AVATARS = "talkfarm.avatars";
const TERMINAL = ["succeeded", "failed", "cancelled"];

const page = {
  portrait: null,       // the picked File
  portraitProblem: null, // an ApiError of the face check that makes the photo unusable
  recording: null,      // the recorded question (Blob)
  recorder: null,
  sessionId: null,
  job: null,            // the job being made: {id, urls, status}
  stopPlayer: null,
  turns: 0,
  timings: {},          // performance.now() marks: submit, accepted, firstSegment, firstFrame, done
};
window.talkfarmPage = page;  // read by the browser test (timings, job)

// ---- errors next to what caused them ----

const ERROR_BOXES = { portrait: "portrait-error", question: "question-error", voice: "voice-error",
                      key: "key-error", form: "form-error" };
const FIELDS = { portrait: "portrait-field", question: "question-field", voice: "voice-field" };
const FOCUS = { portrait: "portrait", question: "text", voice: "voice", key: "api-key", form: "submit" };

function showError(where, words, focus = true) {
  const box = $(ERROR_BOXES[where]);
  box.textContent = words;
  box.hidden = false;
  if (FIELDS[where]) $(FIELDS[where]).classList.add("invalid");
  if (where === "key") showKeyForm();
  const target = $(FOCUS[where]);
  if (focus && target && !target.disabled && !target.hidden) target.focus();
}

function showApiError(error, focus = true) {
  if (error.name === "AbortError") return;
  if (!(error instanceof ApiError)) error = new ApiError(0, "internal", String(error));
  showError(placeOf(error.code), wordsFor(error.code, error.message, error.retryAfter), focus);
}

function clearErrors(...places) {
  for (const where of places.length ? places : Object.keys(ERROR_BOXES)) {
    $(ERROR_BOXES[where]).hidden = true;
    $(ERROR_BOXES[where]).textContent = "";
    if (FIELDS[where]) $(FIELDS[where]).classList.remove("invalid");
  }
}

// ---- the API key, asked once ----

function showKeyForm() {
  $("key-form").hidden = false;
  $("key-saved").hidden = true;
  $("api-key").value = apiKey.get();
}

function keyKnown() {
  $("key-form").hidden = true;
  $("key-saved").hidden = false;
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  apiKey.set($("api-key").value);
  clearErrors("key");
  keyKnown();
  loadVoices();
  $("portrait").focus();
});
$("key-forget").addEventListener("click", () => { apiKey.forget(); showKeyForm(); $("api-key").focus(); });

// ---- the portrait: pick or drop, preview, face check; saved avatars ----

async function pickPortrait(file) {
  if (!file) return;
  page.portrait = file;
  page.portraitProblem = null;
  $("avatar").value = "";
  clearErrors("portrait");
  const preview = $("preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.alt = `Preview of the chosen photo, ${file.name}`;
  preview.hidden = false;
  $("save-avatar").disabled = true;
  const status = $("portrait-status");
  status.className = "status";
  status.textContent = "Looking for a face in the photo…";
  const form = new FormData();
  form.append("portrait", file);
  try {
    const found = await call("POST", "/v1/portraits/check", form);
    if (page.portrait !== file) return;  // another photo was picked meanwhile
    status.textContent = found.faces.length > 1
      ? `${found.faces.length} faces found: the largest one will speak.` : "Face found.";
    status.className = "status ok";
    $("save-avatar").disabled = false;
  } catch (error) {
    if (page.portrait !== file) return;
    status.textContent = "";
    if (error instanceof ApiError && error.code === "facecheck_unavailable") {
      status.textContent = wordsFor(error.code);
      $("save-avatar").disabled = false;
      return;
    }
    if (error instanceof ApiError && placeOf(error.code) === "portrait") page.portraitProblem = error;
    showApiError(error, false);  // said next to the photo (role=alert); the focus stays where the person is
  }
}

$("portrait").addEventListener("change", () => pickPortrait($("portrait").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) pickPortrait(file);
});

function savedAvatars() {
  try { return JSON.parse(localStorage.getItem(AVATARS) || "[]"); } catch { return []; }
}

function listAvatars() {
  const select = $("avatar");
  select.replaceChildren(new Option("none", ""));
  for (const saved of savedAvatars()) select.add(new Option(saved.label, saved.id));
}

$("save-avatar").addEventListener("click", async () => {
  if (!page.portrait) return;
  const form = new FormData();
  form.append("portrait", page.portrait);
  try {
    const avatar = await call("POST", "/v1/avatars", form);
    const label = `${page.portrait.name} (saved ${new Date().toLocaleString()})`;
    localStorage.setItem(AVATARS, JSON.stringify([...savedAvatars(), { id: avatar.avatar_id, label }]));
    listAvatars();
    $("avatar").value = avatar.avatar_id;
    $("portrait-status").textContent = "Saved as an avatar: pick it from the list next time.";
  } catch (error) { showApiError(error); }
});

$("avatar").addEventListener("change", async () => {
  const id = $("avatar").value;
  clearErrors("portrait");
  page.portraitProblem = null;
  if (!id) return;
  page.portrait = null;
  $("portrait").value = "";
  try {
    const preview = $("preview");
    preview.src = await objectUrl(`/v1/avatars/${id}/portrait`);
    preview.alt = "Preview of the saved avatar";
    preview.hidden = false;
    $("portrait-status").textContent = "Saved avatar chosen.";
  } catch (error) {
    if (error instanceof ApiError && (error.code === "avatar_not_found" || error.code === "portrait_gone")) {
      localStorage.setItem(AVATARS, JSON.stringify(savedAvatars().filter((a) => a.id !== id)));
      listAvatars();
    }
    showApiError(error);
  }
});

// ---- the question: typed or recorded ----

function showMode() {
  const mode = $("mode").value;
  $("text-label").textContent = mode === "speak" ? "Text to say" : "Type your question";
  $("text").hidden = $("text-label").hidden = mode === "lipsync";
  $("record").hidden = mode === "speak";
  $("recording-box").hidden = mode === "speak" || !page.recording;
  $("text").disabled = mode === "chat" && !!page.recording;
}
$("mode").addEventListener("change", showMode);

function dropRecording() {
  page.recording = null;
  $("recording").removeAttribute("src");
  $("record-status").textContent = "";
  showMode();
}
$("drop-recording").addEventListener("click", dropRecording);

$("record").addEventListener("click", async () => {
  const button = $("record");
  if (page.recorder) { page.recorder.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    showError("question", "This browser cannot record. Type your question instead.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    showError("question", "The microphone is not available (permission refused?). Type your question instead.");
    return;
  }
  clearErrors("question");
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  page.recorder = recorder;
  recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((t) => t.stop());
    page.recorder = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Record with the microphone";
    page.recording = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
    $("recording").src = URL.createObjectURL(page.recording);
    $("record-status").textContent = "Recorded: it will be sent instead of the typed text.";
    showMode();
  });
  recorder.start();
  button.setAttribute("aria-pressed", "true");
  button.textContent = "Stop recording";
  $("record-status").textContent = "Recording… press again to stop.";
});

function extensionOf(type) {
  const sub = (type.split(";")[0].split("/")[1] || "webm").replace("x-", "");
  return { mpeg: "mp3", "x-wav": "wav", wave: "wav" }[sub] || sub;
}

// ---- voices and languages ----

async function loadVoices() {
  let offer;
  try { offer = await call("GET", "/v1/voices"); } catch { return; }
  const voice = $("voice");
  const language = $("language");
  voice.replaceChildren(new Option("default", ""));
  language.replaceChildren(new Option("detect", ""));
  const languages = new Set();
  for (const v of offer.voices) {
    voice.add(new Option(`${v.name} (${v.languages.join(", ")})`, v.name));
    v.languages.forEach((l) => languages.add(l));
  }
  for (const l of [...languages].sort()) language.add(new Option(l, l));
}

// ---- asking, and following the reply ----

function resetAnswer(mode, spoken) {
  $("answer").hidden = false;
  const progress = $("progress");
  progress.replaceChildren();
  for (const stage of (spoken && mode === "chat" ? ["asr"] : []).concat(STAGES_OF[mode])) stageRow(stage);
  $("transcript").textContent = mode === "chat" && !spoken ? $("text").value.trim() : "…";
  $("reply").textContent = "…";
  $("download").hidden = true;
  if (page.stopPlayer) page.stopPlayer();
  page.stopPlayer = null;
  const video = $("video");
  video.removeAttribute("src");
  video.load();
}

function stageRow(stage) {
  let row = document.querySelector(`#progress li[data-stage="${stage}"]`);
  if (!row) {
    row = document.createElement("li");
    row.dataset.stage = stage;
    row.dataset.state = "waiting";
    row.textContent = `${STAGE_WORDS[stage] || stage}: waiting`;
    $("progress").append(row);
  }
  return row;
}

function setStage(stage, state, words) {
  if (!STAGE_WORDS[stage]) return;  // "cache" and the like are not stages a person follows
  const row = stageRow(stage);
  row.dataset.state = state;
  row.textContent = `${STAGE_WORDS[stage]}: ${words}`;
}

function setStatus(state, words) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = words;
}

function busy(on) {
  $("submit").disabled = on;
  $("cancel").hidden = !on;
}

$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (page.job && !TERMINAL.includes(page.job.status)) return;
  clearErrors();
  const mode = $("mode").value;
  const avatar = $("avatar").value;
  const text = $("text").value.trim();
  if (!page.portrait && !avatar) return showError("portrait", wordsFor("portrait_required"));
  if (page.portrait && page.portraitProblem) return showApiError(page.portraitProblem);
  const spoken = mode !== "speak" && !!page.recording;
  if (mode === "lipsync" && !spoken) return showError("question", wordsFor("audio_required"));
  if (mode !== "lipsync" && !spoken && !text) {
    return showError("question", mode === "speak" ? wordsFor("text_required") : "Type a question or record one.");
  }
  const form = new FormData();
  if (page.portrait) form.append("portrait", page.portrait);
  else form.append("avatar", avatar);
  form.append("mode", mode);
  if (spoken) form.append("audio", page.recording, `question.${extensionOf(page.recording.type)}`);
  else form.append("text", text);
  if ($("voice").value) form.append("voice", $("voice").value);
  if ($("language").value) form.append("language", $("language").value);
  form.append("stream", "true");
  busy(true);
  setStatus("submitting", "Sending…");
  page.timings = { submit: performance.now() };
  try {
    if (!page.sessionId && $("persona").value.trim()) {
      const session = await call("POST", "/v1/sessions", { system_prompt: $("persona").value.trim() });
      page.sessionId = session.session_id;
    }
    if (page.sessionId) form.append("session_id", page.sessionId);
    const accepted = await call("POST", "/v1/jobs", form);
    page.timings.accepted = performance.now();
    page.sessionId = accepted.session_id;
    page.job = { id: accepted.job_id, urls: accepted.urls, status: accepted.status, mode };
    resetAnswer(mode, spoken);
    setStatus("working", accepted.cached ? "Answered from the cache." : "Making the reply…");
    await follow(page.job);
  } catch (error) {
    setStatus("failed", "");
    if (error.code === "session_not_found") page.sessionId = null;  // the next question starts a new one
    showApiError(error);
    if (page.job) page.job.status = "failed";
  } finally {
    busy(false);
  }
});

async function follow(job) {
  const video = $("video");
  const reply = [];
  for await (const { kind, data } of jobEvents(job.urls.events)) {
    if (kind === "started") setStage(data.stage, "running", "working");
    else if (kind === "retrying") setStage(data.stage, "running", "trying again");
    else if (kind === "finished") setStage(data.stage, "done", "done");
    else if (kind === "failed") setStage(data.stage, "failed", "failed");
    if (data.transcript) $("transcript").textContent = data.transcript;
    if (data.reply) $("reply").textContent = data.reply;
    if (kind === "segment") {
      if (data.text) { reply[data.segment] = data.text; $("reply").textContent = reply.filter(Boolean).join(" "); }
      if (!page.stopPlayer) {
        page.timings.firstSegment = performance.now();
        onFirstFrame(video, (at) => { page.timings.firstFrame = at; });
        page.stopPlayer = playStream(video, `${job.urls.job}/stream.m3u8`);
      }
    }
    if (kind === "done") job.status = data.status;
  }
  page.timings.done = performance.now();
  const done = await call("GET", job.urls.job);
  job.status = done.status;
  if (done.transcript) $("transcript").textContent = done.transcript;
  if (done.reply) $("reply").textContent = done.reply;
  if (done.status === "succeeded") {
    setStatus("succeeded", "Done.");
    const mp4 = await objectUrl(done.video_url);
    const download = $("download");
    download.href = mp4;
    download.download = `talkfarm-${job.id}.mp4`;
    download.hidden = false;
    if (!page.stopPlayer) {  // not streamed (an answer from the cache) or no HLS in this browser
      onFirstFrame(video, (at) => { page.timings.firstFrame = page.timings.firstFrame || at; });
      video.src = mp4;
      video.play().catch(() => {});
    }
    addTurn(done, mp4);
  } else if (done.status === "cancelled") {
    setStatus("cancelled", wordsFor("cancelled"));
    for (const row of document.querySelectorAll('#progress li:not([data-state="done"])')) {
      setStage(row.dataset.stage, "cancelled", "cancelled");
    }
  } else {
    const error = done.error || { code: "job_failed", message: "" };
    setStatus("failed", "The reply could not be made.");
    showApiError(new ApiError(0, error.code, error.message));
  }
}

$("cancel").addEventListener("click", async () => {
  if (!page.job) return;
  $("cancel").disabled = true;
  setStatus("cancelling", "Cancelling…");
  try { await call("DELETE", page.job.urls.job); } catch (error) { showApiError(error); }
  $("cancel").disabled = false;
});

// ---- the session's conversation ----

function addTurn(job, mp4) {
  page.turns += 1;
  $("session-status").textContent = `${page.turns} turn${page.turns > 1 ? "s" : ""} in this session.`;
  const item = document.createElement("li");
  const asked = document.createElement("p");
  asked.textContent = `You: ${job.transcript || job.text || "(your recording)"}`;
  const said = document.createElement("p");
  said.textContent = `Reply: ${job.reply || job.text || ""}`;
  const video = document.createElement("video");
  video.controls = true;
  video.preload = "metadata";
  video.src = mp4;
  video.setAttribute("playsinline", "");
  video.setAttribute("aria-label", `Reply ${page.turns}, to replay`);
  item.append(asked, said, video);
  $("turns").append(item);
}

$("new-session").addEventListener("click", () => {
  page.sessionId = null;
  page.turns = 0;
  $("turns").replaceChildren();
  $("session-status").textContent = "New session: the next question starts a new conversation.";
  $("text").value = "";
  dropRecording();
  $("text").focus();
});

// ---- start ----

listAvatars();
showMode();
if (apiKey.known()) {
  keyKnown();
  loadVoices();
} else {
  showKeyForm();
}
