// Turns bot text into DOM nodes without ever parsing it as HTML.
// Markdown links [label](target) become <a> only for http, https, tel and sms;
// anything else (javascript:, data:, ...) stays visible as plain text.

const LINK = /\[([^\[\]\n]{1,200})\]\(([^()\s]{1,500})\)/g;
const SAFE_PROTOCOLS = new Set(["http:", "https:", "tel:", "sms:"]);
const PHONE = /^\+?[0-9-]{3,20}$/;

/** The URL to put in href, or null when the target is not allowed. */
export function safeHref(target) {
  let url;
  try {
    url = new URL(target);
  } catch (error) {
    return null;
  }
  if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
  if (url.protocol === "tel:" || url.protocol === "sms:") {
    return PHONE.test(url.pathname) && !url.search && !url.hash ? url.href : null;
  }
  return url.href;
}

function appendText(parent, text) {
  text.split("\n").forEach((line, index) => {
    if (index > 0) parent.appendChild(document.createElement("br"));
    if (line) parent.appendChild(document.createTextNode(line));
  });
}

/** A DocumentFragment showing `text`, with safe markdown links as <a>. */
export function formatText(text) {
  text = String(text);
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const href = safeHref(match[2]);
    if (!href) continue;
    appendText(fragment, text.slice(last, match.index));
    const link = document.createElement("a");
    link.href = href;
    link.textContent = match[1];
    if (href.startsWith("http")) {
      link.target = "_blank";
      link.rel = "noopener noreferrer";
    }
    fragment.appendChild(link);
    last = match.index + match[0].length;
  }
  appendText(fragment, text.slice(last));
  return fragment;
}

/** A crisis reply links to an emergency line; the widget shows it as urgent. */
export function isCrisis(text) {
  return /\]\((tel:911|tel:988|sms:988)\)/.test(String(text));
}
