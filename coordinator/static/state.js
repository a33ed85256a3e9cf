// What the page knows between events: the chosen portrait, the recording, the session, the job being made.

export const $ = (id) => document.getElementById(id);
export const TERMINAL = ["succeeded", "failed", "cancelled"];

export const page = {
  portrait: null,        // the picked File
  portraitProblem: null, // an ApiError of the face check that makes the photo unusable
  recording: null,       // the recorded question (Blob)
  recorder: null,
  sessionId: null,
  job: null,             // the job being made: {id, urls, status, mode}
  cancelRequested: false, // "Cancel the reply" was pressed for the question being sent
  stopPlayer: null,
  turns: 0,
  timings: {},           // performance.now() marks: submit, accepted, firstSegment, firstFrame, done
};
window.talkfarmPage = page;  // read by the browser test (timings, job)
