// The portrait: pick or drop a photo, its preview and face check (POST /v1/portraits/check); saved avatars, their
// IDs kept in this browser.

import { ApiError, call, objectUrl } from "./api.js";
import { clearErrors, showApiError } from "./errors.js";
import { placeOf, wordsFor } from "./messages.js";
import { $, page } from "./state.js";

const AVATARS = "talkfarm.avatars";

export async function pickPortrait(file) {
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

export function savedAvatars() {
  try { return JSON.parse(localStorage.getItem(AVATARS) || "[]"); } catch { return []; }
}

export function listAvatars() {
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
    // From now on the saved avatar is sent by its ID: the photo is not uploaded again with each question.
    $("avatar").value = avatar.avatar_id;
    page.portrait = null;
    $("portrait").value = "";
    $("save-avatar").disabled = true;
    $("portrait-status").textContent = "Saved as an avatar: the next questions use it, and it stays in the list.";
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
