// Following a job: progress per stage from its events, the transcript and the reply as soon as they are known,
// the video from its first segment, the MP4 to download; then the turn in the session's conversation.

import { ApiError, call, jobEvents, objectUrl } from "./api.js";
import { showApiError } from "./errors.js";
import { wordsFor } from "./messages.js";
import { onFirstFrame, playStream } from "./player.js";
import { $, page } from "./state.js";

const STAGE_WORDS = { asr: "Listening", llm: "Thinking", tts: "Speaking", animation: "Animating" };
const STAGES_OF = { chat: ["llm", "tts", "animation"], speak: ["tts", "animation"], lipsync: ["animation"] };

export function resetAnswer(mode, spoken) {
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

export function stageRow(stage) {
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

export function setStage(stage, state, words) {
  if (!STAGE_WORDS[stage]) return;  // "cache" and the like are not stages a person follows
  const row = stageRow(stage);
  row.dataset.state = state;
  row.textContent = `${STAGE_WORDS[stage]}: ${words}`;
}

export function setStatus(state, words) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = words;
}

export async function follow(job) {
  const video = $("video");
  const reply = [];
  for await (const { kind, data } of jobEvents(job.urls.events)) {
    const sentence = data.segment === undefined ? "" : `sentence ${data.segment + 1} `;
    if (kind === "started") setStage(data.stage, "running", `${sentence}working`);
    else if (kind === "retrying") setStage(data.stage, "running", `${sentence}trying again`);
    else if (kind === "finished") setStage(data.stage, sentence ? "running" : "done", `${sentence}done`);
    else if (kind === "failed") setStage(data.stage, "failed", `${sentence}failed`);
    else if (kind === "completed") {
      for (const row of document.querySelectorAll("#progress li")) setStage(row.dataset.stage, "done", "done");
    }
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
    setStatus("succeeded", "Done.");  // last: once it says so, the MP4 and the turn are there
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

export function addTurn(job, mp4) {
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
