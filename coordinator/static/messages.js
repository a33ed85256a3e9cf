// The API's error codes in words a person understands, and the input each one belongs next to.

const WHERE = {
  portrait: ["no_face", "face_too_small", "face_not_frontal", "bad_image", "image_too_large", "portrait_required",
             "portrait_gone", "avatar_not_found", "bad_face", "bad_avatar"],
  question: ["no_speech", "empty_audio", "bad_audio", "audio_too_long", "audio_required", "text_required",
             "text_too_long", "empty_text", "nothing_to_say", "bad_input", "llm_context_too_long"],
  voice: ["unknown_voice", "unsupported_language", "system_prompt_too_long"],
  key: ["unauthorized", "forbidden"],
};

const WORDS = {
  no_face: "We could not find a face in this photo. Use a photo of one person looking at the camera, in good light.",
  face_too_small: "The face in this photo is too small. Use a closer photo, or a larger one.",
  face_not_frontal: "The face is turned too far away. Use a photo where the person looks at the camera.",
  bad_image: "This file is not a picture we can read. Use a JPEG, PNG or WebP photo.",
  image_too_large: "This picture has too many pixels. Use a smaller photo.",
  upload_too_large: "The files are too large to send. Use a smaller photo or a shorter recording.",
  portrait_required: "Choose a photo (or a saved avatar) first.",
  portrait_gone: "This avatar's photo is gone. Choose another photo.",
  avatar_not_found: "This saved avatar no longer exists. Choose another photo.",
  no_speech: "We heard no speech in the recording. Speak closer to the microphone, or type your question.",
  empty_audio: "The recording is empty. Record again, or type your question.",
  bad_audio: "The recording could not be read. Record again, or type your question.",
  audio_too_long: "The recording is too long. Keep it shorter.",
  audio_required: "This mode needs a recording: record one first.",
  text_required: "Type the text to say.",
  text_too_long: "The text is too long. Make it shorter.",
  empty_text: "There is nothing to say: type some words.",
  nothing_to_say: "There is nothing to say in this text: type some words.",
  bad_input: "Type a question or record one, not both.",
  llm_context_too_long: "The conversation is too long. Start a new session.",
  unknown_voice: "This voice is not available. Choose another voice.",
  unsupported_language: "This language is not available for speech. Choose another language or voice.",
  unauthorized: "The API key is missing or not valid. Enter your key again.",
  forbidden: "This API key may not do this.",
  rate_limited: "Too many requests. Wait a moment and try again.",
  too_many_jobs: "You already have replies being made. Wait for one to finish, or cancel it.",
  too_many_streams: "Too many replies are being followed at once. Close another tab and try again.",
  upload_quota_exceeded: "You have sent as many files as your key allows today.",
  backlog_full: "The farm is busy right now. Try again in a minute.",
  queue_full: "The farm is busy right now. Try again in a minute.",
  broker_unavailable: "The farm is not available right now. Try again in a minute.",
  store_unavailable: "The farm is not available right now. Try again in a minute.",
  results_unavailable: "The farm is not available right now. Try again in a minute.",
  offline: "The farm could not be reached. Check your connection and try again.",
  facecheck_unavailable: "This farm cannot check photos in advance; the photo is checked when you ask.",
  stage_timeout: "Making the reply took too long. Try again, perhaps with a shorter question.",
  timed_out: "Making the reply took too long. Try again, perhaps with a shorter question.",
  stage_crashed: "The farm failed while making this reply. Try again, perhaps with another photo or question.",
  system_prompt_too_long: "The persona is too long. Make it shorter.",
  session_not_found: "This session no longer exists. Start a new session.",
  cancelled: "You cancelled this reply.",
};

/** Where an error belongs: "portrait", "question", "voice", "key", or "form" for the rest. */
export function placeOf(code) {
  for (const [where, codes] of Object.entries(WHERE)) if (codes.includes(code)) return where;
  return "form";
}

/** The message to show for an API error (its code and the API's own message as a fallback). */
export function wordsFor(code, message = "", retryAfter = null) {
  let words = WORDS[code] || (message ? `Something went wrong: ${message}` : "Something went wrong. Try again.");
  if (retryAfter && /^\d+$/.test(retryAfter)) words += ` (about ${retryAfter} s)`;
  return words;
}
