// Talks to Rasa: socket.io channel first, REST channel when socket.io cannot connect.
import { io } from "socket.io-client";

const REST_PATH = "/webhooks/rest/webhook";
// How long socket.io may try before the widget switches to REST.
const SOCKET_TIMEOUT_MS = 5000;

/** Bot messages from either channel in one shape: {text, buttons: [{title, payload}]}. */
function fromSocket(message) {
  return {
    text: message.text || "",
    buttons: (message.quick_replies || []).map((b) => ({ title: b.title, payload: b.payload })),
  };
}

function fromRest(message) {
  return { text: message.text || "", buttons: message.buttons || [] };
}

/**
 * Connection to the assistant. Callbacks: onMessage(message), onStatus(status) with
 * status "connecting" | "online" | "offline" | "rest", onReplyEnd().
 */
export class Transport {
  constructor(url, sessionId, callbacks) {
    this.url = url.replace(/\/$/, "");
    this.sessionId = sessionId;
    this.callbacks = callbacks;
    this.mode = "socket";
    this.connect();
  }

  connect() {
    this.callbacks.onStatus("connecting");
    // WebSocket only: the server runs several worker processes (server.env), and
    // socket.io's long-polling would need every request to reach the same one.
    this.socket = io(this.url, { transports: ["websocket"], reconnectionDelayMax: 3000 });
    let everConnected = false;
    const fallback = setTimeout(() => everConnected || this.useRest(), SOCKET_TIMEOUT_MS);
    this.socket.on("connect", () => {
      everConnected = true;
      clearTimeout(fallback);
      // Joins the room of this session so replies reach every tab of it.
      this.socket.emit("session_request", { session_id: this.sessionId });
    });
    this.socket.on("session_confirm", () => this.callbacks.onStatus("online"));
    this.socket.on("disconnect", () => this.callbacks.onStatus("offline"));
    this.socket.on("connect_error", () => {
      if (everConnected) this.callbacks.onStatus("offline");
    });
    this.socket.on("bot_uttered", (message) => this.callbacks.onMessage(fromSocket(message)));
  }

  useRest() {
    this.socket.close();
    this.mode = "rest";
    this.callbacks.onStatus("rest");
  }

  get ready() {
    return this.mode === "rest" || this.socket.connected;
  }

  /** Sends the text; resolves false when it could not be sent (the caller keeps it). */
  async send(text) {
    if (this.mode === "socket") {
      if (!this.socket.connected) return false;
      this.socket.emit("user_uttered", { message: text, session_id: this.sessionId });
      return true;
    }
    let replies;
    try {
      const response = await fetch(this.url + REST_PATH, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: this.sessionId, message: text }),
      });
      if (!response.ok) return false;
      replies = await response.json();
    } catch (error) {
      return false;
    }
    replies.map(fromRest).forEach((message) => this.callbacks.onMessage(message));
    this.callbacks.onReplyEnd();
    return true;
  }

  restart(sessionId) {
    this.sessionId = sessionId;
    if (this.mode === "socket" && this.socket.connected) {
      this.socket.emit("session_request", { session_id: sessionId });
    }
  }
}
