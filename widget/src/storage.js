// The chat kept for a reload or another page of the site: the session id, the
// transcript, whether the panel is open, and when the last message came. People write
// here about drug use and suicidal thoughts, often on a shared computer, so by default
// it lives in sessionStorage (gone with the tab), is deleted after `idleMinutes` without
// a message, and nothing is kept before the first message. A site can opt in to
// localStorage, which outlives the tab, with { storage: "local" }.
import { isTranscript } from "./message.js";

const KEY = "withdrawal-help:chat";
// Earlier versions kept the chat in localStorage for good under these keys.
const OLD_KEYS = ["withdrawal-help:session", "withdrawal-help:transcript", "withdrawal-help:open"];
const SESSION_ID = /^[\w.-]{1,200}$/;  // ours, or one the server issued
export const DEFAULT_IDLE_MINUTES = 30;

/** The browser's localStorage or sessionStorage; null where it is blocked. */
function area(name) {
  try {
    return name === "local" ? window.localStorage : window.sessionStorage;
  } catch (error) {
    return null;
  }
}

function remove(storage, keys) {
  try {
    keys.forEach((key) => storage && storage.removeItem(key));
  } catch (error) {
    // Nothing can be stored there either.
  }
}

export function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Store {
  /** `storage`: "session" (the default) or "local"; `idleMinutes`: a positive number. */
  constructor({ storage, idleMinutes } = {}) {
    const local = storage === "local";
    this.storage = area(local ? "local" : "session");
    this.idleMs = (Number.isFinite(idleMinutes) && idleMinutes > 0 ? idleMinutes : DEFAULT_IDLE_MINUTES) * 60000;
    // A chat in the storage not chosen (such as one an earlier version kept) goes.
    remove(area(local ? "session" : "local"), [KEY, ...OLD_KEYS]);
    remove(this.storage, OLD_KEYS);
  }

  /** Milliseconds until a chat whose last message came at `lastMessageAt` expires. */
  msLeft(lastMessageAt) {
    const age = Date.now() - lastMessageAt;
    return age < 0 ? 0 : this.idleMs - age;  // a time in the future is not to be trusted
  }

  /** The saved {session, open, lastMessageAt, transcript}, or null; a corrupt or expired one is deleted. */
  load() {
    let chat;
    try {
      const value = this.storage && this.storage.getItem(KEY);
      if (!value) return null;
      chat = JSON.parse(value);
    } catch (error) {
      chat = null;
    }
    const valid = chat !== null && typeof chat === "object" &&
      typeof chat.session === "string" && SESSION_ID.test(chat.session) &&
      typeof chat.open === "boolean" && Number.isFinite(chat.lastMessageAt) &&
      isTranscript(chat.transcript) && chat.transcript.length > 0;
    if (valid && this.msLeft(chat.lastMessageAt) > 0) return chat;
    this.clear();
    return null;
  }

  save(chat) {
    try {
      this.storage.setItem(KEY, JSON.stringify(chat));
    } catch (error) {
      // Private mode, a full quota or blocked storage: the chat works, it just is not kept.
    }
  }

  clear() {
    remove(this.storage, [KEY]);
  }
}
