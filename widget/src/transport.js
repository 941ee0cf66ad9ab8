// Talks to Rasa: socket.io channel first, REST channel when socket.io cannot connect.
import { io } from "socket.io-client";
import { readReply, refusal, restReplies } from "./message.js";

const REST_PATH = "/webhooks/rest/webhook";
const FORGET_PATH = "/webhooks/rest/forget";
// Conversation ids the server issued (and signed); the widget never makes one up.
const issued = (id) => typeof id === "string" && id.startsWith("web-");
// How long socket.io may try before the widget switches to REST.
const SOCKET_TIMEOUT_MS = 5000;

/**
 * Connection to the assistant. Callbacks: onMessage(message) with a checked message
 * {text, buttons: [{title, payload}]}, onStatus(status) with status "connecting" |
 * "online" | "offline" | "rest", onReplyEnd(), onSession(sessionId) when the server
 * names the conversation, and onRefused(messages) when the server refused a message
 * (413, 429, 503) with the kind replies to show instead.
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
    this.socket.on("session_confirm", (sessionId) => {
      // The server names the conversation; it may issue a new id instead of ours.
      if (typeof sessionId === "string" && sessionId && sessionId !== this.sessionId) {
        this.sessionId = sessionId;
        this.callbacks.onSession(sessionId);
      }
      this.callbacks.onStatus("online");
    });
    this.socket.on("disconnect", () => this.callbacks.onStatus("offline"));
    this.socket.on("connect_error", () => {
      if (everConnected) this.callbacks.onStatus("offline");
    });
    this.socket.on("bot_uttered", (reply) => {
      const message = readReply(reply, "quick_replies");
      if (message) this.callbacks.onMessage(message);
    });
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
    let response;
    try {
      // Without an issued id the server starts a conversation and names it.
      const request = issued(this.sessionId) ? { sender: this.sessionId, message: text } : { message: text };
      response = await fetch(this.url + REST_PATH, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
    } catch (error) {
      return false;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      // Too long, too fast or no answer: the server's replies say so and give the
      // emergency numbers. The message counts as not sent, so the caller keeps it.
      this.callbacks.onRefused(refusal(body));
      return false;
    }
    const named = Array.isArray(body) && body.length && body[0] ? body[0].recipient_id : null;
    if (issued(named) && named !== this.sessionId) {
      this.sessionId = named;
      this.callbacks.onSession(named);
    }
    restReplies(body).forEach((message) => this.callbacks.onMessage(message));
    this.callbacks.onReplyEnd();
    return true;
  }

  /**
   * Starts a new conversation. With `deleteOnServer` ("Start over") the old one is also
   * deleted on the server; the server then names the new one.
   */
  restart(sessionId, deleteOnServer = false) {
    const old = this.sessionId;
    this.sessionId = sessionId;
    if (this.mode === "socket" && this.socket.connected) {
      this.socket.emit(deleteOnServer ? "session_forget" : "session_request", { session_id: sessionId });
    } else if (deleteOnServer && issued(old)) {
      fetch(this.url + FORGET_PATH, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: old }),
      }).catch(() => {});
    }
  }
}
