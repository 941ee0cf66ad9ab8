// The session id and the transcript live in localStorage, so a reload (or another
// page of the same site) continues the same conversation.

const PREFIX = "withdrawal-help:";

function read(key, fallback) {
  try {
    const value = localStorage.getItem(PREFIX + key);
    return value === null ? fallback : JSON.parse(value);
  } catch (error) {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch (error) {
    // Private mode or a full quota: the chat still works, it just is not kept.
  }
}

function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const store = {
  sessionId() {
    let id = read("session", null);
    if (typeof id !== "string") {
      id = newSessionId();
      write("session", id);
    }
    return id;
  },
  transcript: () => read("transcript", []),
  saveTranscript: (entries) => write("transcript", entries),
  isOpen: () => read("open", false) === true,
  setOpen: (open) => write("open", open),
  /** Forgets the conversation and returns a new session id. */
  reset() {
    const id = newSessionId();
    write("session", id);
    write("transcript", []);
    return id;
  },
};
