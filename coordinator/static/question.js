// The question: typed, or recorded with the microphone (MediaRecorder); what the chosen mode asks for.

import { clearErrors, showError } from "./errors.js";
import { $, page } from "./state.js";

export function showMode() {
  const mode = $("mode").value;
  $("text-label").textContent = mode === "speak" ? "Text to say" : "Type your question";
  $("text").hidden = $("text-label").hidden = mode === "lipsync";
  $("record").hidden = mode === "speak";
  $("recording-box").hidden = mode === "speak" || !page.recording;
  $("text").disabled = mode === "chat" && !!page.recording;
}
$("mode").addEventListener("change", showMode);

export function dropRecording() {
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

export function extensionOf(type) {
  const sub = (type.split(";")[0].split("/")[1] || "webm").replace("x-", "");
  return { mpeg: "mp3", "x-wav": "wav", wave: "wav" }[sub] || sub;
}
