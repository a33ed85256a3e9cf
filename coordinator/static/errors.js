// Errors next to what caused them (the photo, the question, the voice, the key, or the form), and the key form.

import { ApiError, apiKey } from "./api.js";
import { placeOf, wordsFor } from "./messages.js";
import { $ } from "./state.js";

const ERROR_BOXES = { portrait: "portrait-error", question: "question-error", voice: "voice-error",
                      key: "key-error", form: "form-error" };
const FIELDS = { portrait: "portrait-field", question: "question-field", voice: "voice-field" };
// An error of the whole form has no input to go back to: the focus goes to its words (tabindex=-1), read out
// there, and the next Tab reaches the buttons. (The Ask button is disabled while a question is being sent.)
const FOCUS = { portrait: "portrait", question: "text", voice: "voice", key: "api-key", form: "form-error" };

export function showError(where, words, focus = true) {
  const box = $(ERROR_BOXES[where]);
  box.textContent = words;
  box.hidden = false;
  if (FIELDS[where]) $(FIELDS[where]).classList.add("invalid");
  if (where === "key") showKeyForm();
  const target = $(FOCUS[where]);
  if (focus && target && !target.disabled && !target.hidden) target.focus();
}

export function showApiError(error, focus = true) {
  if (error.name === "AbortError") return;
  if (!(error instanceof ApiError)) error = new ApiError(0, "internal", String(error));
  showError(placeOf(error.code), wordsFor(error.code, error.message, error.retryAfter), focus);
}

export function clearErrors(...places) {
  for (const where of places.length ? places : Object.keys(ERROR_BOXES)) {
    $(ERROR_BOXES[where]).hidden = true;
    $(ERROR_BOXES[where]).textContent = "";
    if (FIELDS[where]) $(FIELDS[where]).classList.remove("invalid");
  }
}

export function showKeyForm() {
  $("key-form").hidden = false;
  $("key-saved").hidden = true;
  $("api-key").value = apiKey.get();
}

export function keyKnown() {
  $("key-form").hidden = true;
  $("key-saved").hidden = false;
}
