// Playing a streamed reply as its segments land: hls.js (light build, vendored) where the browser has Media
// Source Extensions, the browser's own HLS (Safari) otherwise, and the finished MP4 where neither is there.

import { authHeaders } from "./api.js";

/** Start playing the job's HLS playlist in ``video``; returns a function that stops it. */
export function playStream(video, playlistUrl) {
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({
      lowLatencyMode: true,     // ask for the next segment with a blocking reload (_HLS_msn)
      startPosition: 0,         // the reply from its first word, not from the live edge
      xhrSetup: (xhr) => {
        for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      },
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else hls.startLoad();
    });
    hls.loadSource(playlistUrl);
    hls.attachMedia(video);
    hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    return () => hls.destroy();
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    // Native HLS cannot send the Authorization header: it works where the farm runs without keys.
    video.src = playlistUrl;
    video.play().catch(() => {});
    return () => { video.removeAttribute("src"); video.load(); };
  }
  return null;  // no HLS here: the page plays the MP4 once the job is done
}

/** Call ``onFirst(performance.now())`` when the first frame is shown (requestVideoFrameCallback, else "playing"). */
export function onFirstFrame(video, onFirst) {
  if ("requestVideoFrameCallback" in video) {
    video.requestVideoFrameCallback(() => onFirst(performance.now()));
  } else {
    video.addEventListener("playing", () => onFirst(performance.now()), { once: true });
  }
}
