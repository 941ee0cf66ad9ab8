// Bot replies come from the network, and a saved chat from storage that any script on
// the page can write. Both are checked here before the widget saves or shows them, so
// a malformed one can never break the widget (and with it the way to "Start over").

export const EMERGENCY = "If you are in danger, call 911 now, or call or text 988.";
/** Shown instead of a reply the widget cannot read. */
export const UNREADABLE = `Sorry, I could not show that reply. Please ask me again. ${EMERGENCY}`;
/** Shown when the server refused a message without a reply the widget can read. */
export const REFUSED = `Sorry, I could not answer just now. Please try again in a minute. ${EMERGENCY}`;

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

const isButton = (button) =>
  isObject(button) && typeof button.title === "string" && button.title.trim() !== "" &&
  typeof button.payload === "string";

/**
 * A reply from the server as {text, buttons}, with its buttons under `buttonsField`;
 * null when it has nothing the widget can show (an image, a custom payload).
 */
export function readReply(reply, buttonsField) {
  if (!isObject(reply)) return { text: UNREADABLE, buttons: [] };
  const buttons = Array.isArray(reply[buttonsField])
    ? reply[buttonsField].filter(isButton).map(({ title, payload }) => ({ title, payload }))
    : [];
  const { text } = reply;
  if (text === undefined || text === null || text === "") return buttons.length ? { text: "", buttons } : null;
  return { text: typeof text === "string" ? text : UNREADABLE, buttons };
}

/** The messages of a REST channel answer; a body that is not a list is one unreadable reply. */
export function restReplies(body) {
  if (!Array.isArray(body)) return [{ text: UNREADABLE, buttons: [] }];
  return body.map((reply) => readReply(reply, "buttons")).filter(Boolean);
}

/**
 * What to show for a refused message (413, 429, 503): the server's own kind replies,
 * which carry the emergency numbers, or REFUSED when the body has none.
 */
export function refusal(body) {
  const texts = Array.isArray(body)
    ? body.filter((reply) => isObject(reply) && typeof reply.text === "string" && reply.text.trim())
        .map((reply) => reply.text)
    : [];
  return (texts.length ? texts : [REFUSED]).map((text) => ({ text, buttons: [] }));
}

const isEntry = (entry) =>
  isObject(entry) && typeof entry.text === "string" &&
  (entry.from === "user" ||
    (entry.from === "bot" && (entry.buttons === undefined ||
      (Array.isArray(entry.buttons) && entry.buttons.every(isButton)))));

/** Whether a saved transcript is a list of entries the widget itself wrote. */
export const isTranscript = (entries) => Array.isArray(entries) && entries.every(isEntry);
