// The withdrawal help chat widget. Embed it with one script tag and one line:
//   <script src="widget.js"></script>
//   <script>WithdrawalHelpChat.init({ url: "https://assistant.example.org" });</script>
import { formatText, isCrisis } from "./format.js";
import { Store, newSessionId } from "./storage.js";
import { CSS } from "./styles.js";
import { Transport } from "./transport.js";
import { EMERGENCY } from "./message.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  online: "",
  rest: "",
  offline: `Connection lost. Reconnecting… What you typed is kept. ${EMERGENCY}`,
};
const WELCOME =
  "Hi. Ask me about opiate withdrawal, detox or Klonopin, for you or someone you care about.";
// The typing indicator gives up after this long without a reply.
const TYPING_TIMEOUT_MS = 30000;
// The longest delay setTimeout takes; longer idle times are waited for in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Creates an element with attributes and optional text (always set as text). */
function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

class ChatWidget {
  constructor(options) {
    this.title = options.title || "Withdrawal help";
    this.store = new Store(options);
    const saved = this.store.load();
    this.sessionId = saved ? saved.session : newSessionId();
    this.transcript = saved ? saved.transcript : [];
    this.lastMessageAt = saved ? saved.lastMessageAt : 0;
    this.buildDom(options.container || document.body);
    this.transcript.forEach((entry) => this.showEntry(entry, false));
    this.showReplies(this.lastButtons());
    this.transport = new Transport(options.url, this.sessionId, {
      onMessage: (message) => this.receive(message),
      onStatus: (status) => this.setStatus(status),
      onReplyEnd: () => this.setTyping(false),
      onSession: (sessionId) => {
        this.sessionId = sessionId;
        this.save();
      },
      onRefused: (messages) => messages.forEach((message) => this.showEntry({ from: "bot", ...message }, true)),
    });
    if (saved && saved.open) this.open(false);
    this.watchIdle();
  }

  buildDom(container) {
    const host = el("div", { id: "withdrawal-help-chat" });
    const root = host.attachShadow({ mode: "open" });
    root.appendChild(el("style", {}, CSS));
    this.root = el("div", { class: "root" });
    root.appendChild(this.root);

    this.launcher = el("button", {
      class: "launcher", type: "button", "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-controls": "whc-panel",
    }, "Chat: withdrawal help");
    this.launcher.addEventListener("click", () => (this.panel.hidden ? this.open(true) : this.close()));

    this.panel = el("section", { id: "whc-panel", class: "panel", role: "dialog", "aria-label": this.title });
    this.panel.hidden = true;
    this.panel.addEventListener("keydown", (event) => event.key === "Escape" && this.close());

    const header = el("header");
    header.appendChild(el("h2", {}, this.title));
    const restart = el("button", { type: "button", class: "restart" }, "Start over");
    restart.addEventListener("click", () => this.restart());
    const close = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "✕");
    close.addEventListener("click", () => this.close());
    header.append(restart, close);

    const disclaimer = el("p", { class: "disclaimer" });
    disclaimer.append(
      formatText(
        "This is an automated assistant with general information, not medical advice. " +
          "In an emergency [call 911](tel:911).",
      ),
    );

    this.status = el("div", { class: "status", role: "status", "aria-live": "polite" });
    // The live region holds the list: an <ol> given role="log" loses its list items.
    this.logBox = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    this.log = el("ol", { class: "messages" });
    this.logBox.appendChild(this.log);
    this.log.appendChild(el("li", { class: "msg bot" }, WELCOME));
    this.typing = el("li", { class: "typing", "aria-label": "The assistant is typing" }, "Typing…");
    this.typing.hidden = true;
    this.log.appendChild(this.typing);
    this.replies = el("div", { class: "replies", role: "group", "aria-label": "Suggested replies" });

    this.form = el("form", { "aria-label": "Send a message" });
    const label = el("label", { for: "whc-input", class: "sr-only" }, "Your message");
    this.input = el("input", { id: "whc-input", type: "text", autocomplete: "off", maxlength: "1000", placeholder: "Type your question…" });
    const send = el("button", { type: "submit" }, "Send");
    this.form.append(label, this.input, send);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(this.input.value);
    });

    this.panel.append(header, disclaimer, this.status, this.logBox, this.replies, this.form);
    this.root.append(this.launcher, this.panel);
    container.appendChild(host);
  }

  open(focus) {
    this.panel.hidden = false;
    this.root.classList.add("open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.save();
    this.scrollDown();
    if (focus) this.input.focus();
  }

  close() {
    this.panel.hidden = true;
    this.root.classList.remove("open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.save();
    this.launcher.focus();
  }

  setStatus(status) {
    this.status.textContent = STATUS_TEXT[status];
    this.root.dataset.status = status;
  }

  setTyping(on) {
    clearTimeout(this.typingTimer);
    this.typing.hidden = !on;
    if (on) this.typingTimer = setTimeout(() => this.setTyping(false), TYPING_TIMEOUT_MS);
    this.scrollDown();
  }

  /** Sends what the user typed; when it cannot go out, it goes back into the box. */
  async submit(text) {
    text = text.trim();
    if (!text) return;
    this.input.value = "";
    if (!(await this.send(text, text))) this.input.value = text;
  }

  /** Shows `shown` as the user's bubble and sends `payload`; false when not sent. */
  async send(shown, payload) {
    if (!this.transport.ready) {
      this.setStatus("offline");
      return false;
    }
    this.showReplies([]);
    const bubble = this.record({ from: "user", text: shown });
    this.setTyping(true);
    const sent = await this.transport.send(payload);
    if (!sent) {
      this.setTyping(false);
      this.transcript.pop();
      this.save();
      bubble.remove();
      this.status.textContent = `Your message could not be sent. Please try again. ${EMERGENCY}`;
    }
    return sent;
  }

  receive(message) {
    this.setTyping(false);
    this.record({ from: "bot", text: message.text, buttons: message.buttons });
    this.showReplies(message.buttons);
  }

  record(entry) {
    this.transcript.push(entry);
    this.lastMessageAt = Date.now();
    this.save();
    this.watchIdle();
    return this.showEntry(entry, true);
  }

  /** Keeps the chat for a reload; before the first message nothing is kept. */
  save() {
    if (this.transcript.length) {
      this.store.save({
        session: this.sessionId, open: !this.panel.hidden,
        lastMessageAt: this.lastMessageAt, transcript: this.transcript,
      });
    } else {
      this.store.clear();
    }
  }

  /** Forgets the chat once it has been idle too long, also while the page stays open. */
  watchIdle() {
    clearTimeout(this.idleTimer);
    if (!this.transcript.length) return;
    const left = this.store.msLeft(this.lastMessageAt);
    this.idleTimer = setTimeout(
      () => (this.store.msLeft(this.lastMessageAt) > 0 ? this.watchIdle() : this.forget()),
      Math.min(left, MAX_TIMER_MS),
    );
  }

  /** Adds a bubble; `live` when it just arrived (restored ones are not announced again). */
  showEntry(entry, live) {
    const crisis = entry.from === "bot" && isCrisis(entry.text);
    const item = el("li", { class: `msg ${entry.from}${crisis ? " crisis" : ""}` });
    item.appendChild(el("span", { class: "sr-only" }, entry.from === "user" ? "You said: " : "Assistant: "));
    const content = entry.from === "bot" ? formatText(entry.text) : document.createTextNode(entry.text);
    // A new crisis reply is announced at once, interrupting whatever is read out (inside
    // the list item, which must stay one).
    const alert = crisis && live ? item.appendChild(el("div", { role: "alert" })) : null;
    (alert || item).appendChild(content);
    this.log.insertBefore(item, this.typing);
    this.scrollDown();
    return item;
  }

  lastButtons() {
    const last = this.transcript[this.transcript.length - 1];
    return last && last.from === "bot" ? last.buttons || [] : [];
  }

  showReplies(buttons) {
    this.replies.replaceChildren();
    for (const button of buttons || []) {
      const node = el("button", { type: "button" }, button.title);
      // A quick reply shows its title but sends its payload, as Rasa expects.
      // The buttons go away once used, so keyboard focus moves on to the input box.
      node.addEventListener("click", () => {
        this.input.focus();
        this.send(button.title, button.payload);
      });
      this.replies.appendChild(node);
    }
    this.scrollDown();  // the buttons take room from the conversation above them
  }

  /**
   * Forgets the conversation, on screen and in the browser, and starts a new session;
   * with `deleteOnServer` ("Start over") the server deletes its copy too.
   */
  forget(deleteOnServer = false) {
    clearTimeout(this.idleTimer);
    this.transcript = [];
    this.store.clear();
    this.sessionId = newSessionId();
    this.transport.restart(this.sessionId, deleteOnServer);
    this.log.querySelectorAll(".msg:not(:first-child)").forEach((node) => node.remove());
    this.showReplies([]);
    this.setTyping(false);
    this.input.value = "";
  }

  restart() {
    this.forget(true);
    this.input.focus();
  }

  scrollDown() {
    this.logBox.scrollTop = this.logBox.scrollHeight;
  }
}

let widget = null;

/**
 * Starts the widget once per page. `url` is the Rasa server; `storage` ("session", the
 * default, or "local") and `idleMinutes` (30 by default) say where and how long the
 * browser keeps the conversation.
 */
export function init(options) {
  if (!options || !options.url) throw new Error("WithdrawalHelpChat.init needs { url }");
  widget = widget || new ChatWidget(options);
  return widget;
}

export { formatText, safeHref } from "./format.js";
