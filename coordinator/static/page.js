// The web page: a portrait (checked for a face as soon as it is picked) or a saved avatar, a typed or recorded
// question, then the reply as it is made: progress per stage from the job's events, the transcript and the reply
// as soon as they are known, the video from its first segment (HLS), the MP4 to download, and the session's turns.
// This module wires the form together; each part lives in its own module.

import { apiKey, call } from "./api.js";
import { clearErrors, keyKnown, showApiError, showError, showKeyForm } from "./errors.js";
import { wordsFor } from "./messages.js";
import { listAvatars } from "./portrait.js";
import { dropRecording, extensionOf, showMode } from "./question.js";
import { follow, resetAnswer, setStatus } from "./reply.js";
import { $, page, TERMINAL } from "./state.js";

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  apiKey.set($("api-key").value);
  clearErrors("key");
  keyKnown();
  loadVoices();
  $("portrait").focus();
});
$("key-forget").addEventListener("click", () => { apiKey.forget(); showKeyForm(); $("api-key").focus(); });

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

function busy(on) {
  $("submit").disabled = on;
  $("cancel").hidden = !on;
  $("cancel").disabled = false;
}

// DELETE the job being made. Pressed before the farm has accepted it, the cancel waits for its ID.
async function cancelJob() {
  try { await call("DELETE", page.job.urls.job); } catch (error) { showApiError(error); }
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
  page.cancelRequested = false;
  page.job = null;  // a cancel from now on is for this question's job, not the last one
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
    if (page.cancelRequested) {
      setStatus("cancelling", "Cancelling…");
      cancelJob();  // the events then end with the job cancelled
    } else {
      setStatus("working", accepted.cached ? "Answered from the cache." : "Making the reply…");
    }
    $("answer").scrollIntoView({ block: "start", behavior: "smooth" });
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

$("cancel").addEventListener("click", async () => {
  $("cancel").disabled = true;
  setStatus("cancelling", "Cancelling…");
  page.cancelRequested = true;
  if (page.job && !TERMINAL.includes(page.job.status)) await cancelJob();
});

$("new-session").addEventListener("click", () => {
  page.sessionId = null;
  page.turns = 0;
  $("turns").replaceChildren();
  if (!page.job || TERMINAL.includes(page.job.status)) {
    // The last answer belonged to the old conversation: clear it away (a reply still being made stays).
    if (page.stopPlayer) page.stopPlayer();
    page.stopPlayer = null;
    $("answer").hidden = true;
  }
  $("session-status").textContent = "New session: the next question starts a new conversation.";
  $("text").value = "";
  dropRecording();
  $("text").focus();
});

listAvatars();
showMode();
if (apiKey.known()) {
  keyKnown();
  loadVoices();
} else {
  showKeyForm();
}
