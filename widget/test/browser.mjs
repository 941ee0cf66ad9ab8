// Drives the demo page in headless Chromium (the Debian package, never a downloaded
// browser). Usage: node browser.mjs <scenario> <demo page url> <artifacts dir>
// with the expected texts as JSON on stdin. Exits non-zero when a check fails.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [scenario, demoUrl, artifacts] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(0, "utf8"));
const TIMEOUT = 30000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

/** A new tab on `url`; dialogs and script errors are recorded (dialogs dismissed), never expected. */
async function openPage(context, url = demoUrl) {
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on("dialog", (dialog) => {
    page.dialogs.push(dialog.message());
    dialog.dismiss();
  });
  page.on("pageerror", (error) => page.errors.push(error.message));
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(url);
  return page;
}

/** A fresh browser profile on the demo page. */
async function openDemo(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  return { context, page: await openPage(context) };
}

/** A fresh profile on a site's own page with its options for the widget (EMBEDDED in tests/test_widget.py). */
async function openEmbedded(name) {
  const context = await browser.newContext();
  return { context, page: await openPage(context, new URL(name, demoUrl).href) };
}

/** socket.io blocked (as by some proxies), so the widget uses the REST channel. */
async function blockSocket(context) {
  await context.route("**/socket.io/**", (route) => route.abort());
  await context.routeWebSocket(/socket\.io/, (ws) => ws.close());
}

/** The demo page with socket.io blocked and the widget open on REST; `fake` answers
 * the REST webhook with the given replies instead of the server (see fakeRest). */
async function openOnRest(fake = null) {
  const context = await browser.newContext();
  await blockSocket(context);
  if (fake) await fakeRest(context, fake);
  const page = await openPage(context);
  const w = widget(page);
  await w.launcher.click();
  await waitStatus(page, "rest");
  return { page, w };
}

const KEY = "withdrawal-help:chat";

/** What the widget keeps in each of the page's storages (parsed), and any other key of it. */
const stored = (page) => page.evaluate((key) => {
  const ours = (storage) => Object.keys(storage).filter((name) => name.startsWith("withdrawal-help:"));
  return {
    session: JSON.parse(sessionStorage.getItem(key)),
    local: JSON.parse(localStorage.getItem(key)),
    keys: [...ours(sessionStorage), ...ours(localStorage)].filter((name) => name !== key),
  };
}, KEY);

/** Puts `value` (any string) where the widget keeps its chat in `area` ("sessionStorage" or "localStorage"). */
const putStored = (page, area, value) =>
  page.evaluate(([key, area, value]) => window[area].setItem(key, value), [KEY, area, value]);

const MINUTE = 60000;
const NOTHING_KEPT = { session: null, local: null, keys: [] };

/**
 * Answers the REST webhook with `answers` ({status, body}) in turn, then lets requests
 * through to the server. The page is on another origin, so the answers carry CORS headers.
 */
async function fakeRest(context, answers) {
  const headers = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Content-Type" };
  await context.route("**/webhooks/rest/webhook", (route) => {
    if (!answers.length) return route.continue();
    if (route.request().method() === "OPTIONS") return route.fulfill({ status: 204, headers });
    const { status = 200, body } = answers.shift();
    return route.fulfill({ status, headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  });
}

// Playwright's CSS locators pierce the widget's open shadow root.
const widget = (page) => ({
  launcher: page.locator(".launcher"),
  panel: page.locator(".panel"),
  input: page.locator("#whc-input"),
  bot: page.locator(".msg.bot"),
  user: page.locator(".msg.user"),
  replies: page.locator(".replies button"),
  crisis: page.locator(".msg.crisis"),
});

/** Text of a bubble without its screen-reader prefix. */
const bubbleText = (locator) =>
  locator.evaluate((node) =>
    [...node.childNodes].filter((child) => !child.classList?.contains("sr-only"))
      .map((child) => child.textContent).join(""));

/** Sends `text` by typing it and pressing Enter; waits for `botCount` bot bubbles. */
async function ask(page, text, botCount) {
  const w = widget(page);
  await w.input.fill(text);
  await w.input.press("Enter");
  await w.bot.nth(botCount - 1).waitFor();
}

async function waitStatus(page, status) {
  await page.waitForFunction((status) => document.querySelector("#withdrawal-help-chat")
    .shadowRoot.querySelector(".root").dataset.status === status, status);
}

async function waitOnline(page) {
  await page.waitForFunction(
    () => ["online", "rest"].includes(document.querySelector("#withdrawal-help-chat")
      .shadowRoot.querySelector(".root").dataset.status),
  );
}

/** Markdown as the widget shows it: the link labels, not the targets. */
const shown = (text) => text.replace(/\[([^\]]+)\]\([^)]+\)/g, "$1");

async function assertCrisisLinks(page) {
  const w = widget(page);
  const crisis = w.crisis.last();
  await crisis.waitFor();
  assert.equal(await crisis.locator('[role="alert"]').count(), 1);
  const links = await crisis.locator("a").evaluateAll((nodes) => nodes.map((a) => a.getAttribute("href")));
  assert.deepEqual(links, ["tel:911", "tel:988", "sms:988", "tel:18006624357"]);
  assert.equal(await bubbleText(crisis), shown(expected.crisis));
}

const scenarios = {
  /** Question, quick reply, crisis, reload with history, answer in the same conversation. */
  async conversation() {
    const { page } = await openDemo();
    const w = widget(page);
    assert.equal(await w.panel.isVisible(), false);
    await w.launcher.click();
    assert.equal(await w.launcher.getAttribute("aria-expanded"), "true");
    assert.ok(await page.getByText("not medical advice").isVisible());
    await waitOnline(page);

    // The typing indicator shows while the answer is on its way.
    await page.evaluate(() => {
      const typing = document.querySelector("#withdrawal-help-chat").shadowRoot.querySelector(".typing");
      new MutationObserver(() => { if (!typing.hidden) window.typingShown = true; })
        .observe(typing, { attributes: true });
    });
    await ask(page, expected.question, 2);
    assert.equal(await page.evaluate(() => window.typingShown), true);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.answer);
    assert.equal(await page.locator(".typing").isVisible(), false);

    assert.equal(await w.replies.first().textContent(), expected.button_title);
    await w.replies.first().click();
    await w.bot.nth(2).waitFor();
    assert.equal(await bubbleText(w.user.nth(1)), expected.button_title);
    assert.equal(await bubbleText(w.bot.nth(2)), expected.button_answer);

    await ask(page, expected.crisis_message, 4);
    await assertCrisisLinks(page);
    await w.replies.filter({ hasText: expected.safe_title }).waitFor();
    const screenshot = `${artifacts}/widget-conversation.png`;
    await page.screenshot({ path: screenshot });
    const before = await w.bot.allTextContents();

    await page.reload();
    await w.panel.waitFor();  // the panel stays open across pages
    assert.deepEqual(await w.bot.allTextContents(), before);
    assert.equal(await w.crisis.count(), 1);
    assert.equal(await w.crisis.locator('[role="alert"]').count(), 0);  // shown, not announced again
    await waitOnline(page);
    // The reloaded page continues the server's conversation: "yes" answers "are you safe?".
    await w.replies.filter({ hasText: expected.safe_title }).click();
    await w.bot.nth(before.length).waitFor();
    assert.equal(await bubbleText(w.bot.nth(before.length)), expected.safe_answer);

    const session = (await stored(page)).session.session;
    await page.getByRole("button", { name: "Start over" }).click();
    assert.equal(await w.user.count(), 0);
    assert.equal(await w.bot.count(), 1);  // the welcome line only
    assert.deepEqual(await stored(page), { session: null, local: null, keys: [] });
    await ask(page, expected.question, 2);  // a new conversation
    assert.notEqual((await stored(page)).session.session, session);
    await page.getByRole("button", { name: "Start over" }).click();
    await page.reload();
    assert.equal(await w.user.count(), 0);
    // tests/test_widget.py checks that the server deleted the first conversation.
    return { screenshot, bubbles_before_reload: before.length, started_over: session };
  },

  /** Markup and script links that users type (or a server sends) never run. */
  async hostile() {
    const { page } = await openDemo();
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    const attacks = [
      "<img src=x onerror=alert(1)>",
      "[tap here](javascript:alert(document.domain))",
      "<script>window.pwned = true</script><a href=\"javascript:window.pwned=true\">x</a>",
    ];
    for (const [index, attack] of attacks.entries()) {
      await ask(page, attack, index + 2);
      assert.equal(await bubbleText(w.user.nth(index)), attack);
    }
    const root = page.locator("#withdrawal-help-chat");
    assert.equal(await root.locator("img, script").count(), 0);
    const hrefs = await root.locator(".log a").evaluateAll((links) => links.map((a) => a.protocol));
    assert.deepEqual(hrefs.filter((protocol) => !["http:", "https:", "tel:", "sms:"].includes(protocol)), []);

    // The same renderer on hostile bot text: only the safe schemes become links.
    const rendered = await page.evaluate(() => {
      const box = document.createElement("div");
      box.appendChild(WithdrawalHelpChat.formatText(
        "[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](data:text/html,<script>alert(1)</script>) " +
        "[d](vbscript:x) [e](tel:911;alert(1)) [f](https://example.org/x) [g](tel:911) [h](sms:988) <b onclick=x>i</b>",
      ));
      document.body.appendChild(box);
      box.querySelectorAll("a").forEach((a) => a.click());
      return { links: [...box.querySelectorAll("a")].map((a) => a.getAttribute("href")),
               elements: box.querySelectorAll("*:not(a)").length, text: box.textContent };
    });
    assert.deepEqual(rendered.links, ["https://example.org/x", "tel:911", "sms:988"]);
    assert.equal(rendered.elements, 0);
    assert.ok(rendered.text.includes("[a](javascript:alert(1))"));
    await page.waitForTimeout(500);
    assert.deepEqual(page.dialogs, []);
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    return { attacks: attacks.length };
  },

  /** Keyboard only: Tab to the launcher, Enter, type, pick a quick reply, Escape. */
  async keyboard() {
    const { page } = await openDemo();
    const w = widget(page);
    await page.keyboard.press("Tab");
    assert.equal(await w.launcher.evaluate((node) => node.getRootNode().activeElement === node), true);
    await page.keyboard.press("Enter");
    assert.equal(await w.panel.getAttribute("role"), "dialog");
    assert.equal(await page.locator(".log").getAttribute("role"), "log");
    assert.equal(await w.input.evaluate((node) => node.getRootNode().activeElement === node), true);
    await waitOnline(page);
    await page.keyboard.type(expected.question);
    await page.keyboard.press("Enter");
    await w.bot.nth(1).waitFor();
    await w.replies.first().waitFor();
    // Quick replies come just before the input in the tab order.
    await page.keyboard.press("Shift+Tab");
    const focused = await page.evaluate(() =>
      document.querySelector("#withdrawal-help-chat").shadowRoot.activeElement.textContent);
    assert.equal(focused, await w.replies.last().textContent());
    await page.keyboard.press("Enter");
    await w.bot.nth(2).waitFor();
    assert.equal(await bubbleText(w.user.nth(1)), focused);
    await page.keyboard.press("Escape");
    assert.equal(await w.panel.isVisible(), false);
    assert.equal(await w.launcher.evaluate((node) => node.getRootNode().activeElement === node), true);
    return {};
  },

  /** A 360 px phone: the panel fills the screen, nothing scrolls sideways. */
  async mobile() {
    const { page } = await openDemo({ width: 360, height: 740 });
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    await ask(page, expected.crisis_message, 2);
    await assertCrisisLinks(page);
    const box = await w.panel.boundingBox();
    assert.deepEqual([box.x, box.width, box.y + box.height], [0, 360, 740]);
    assert.ok(await w.input.isVisible());
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360));
    const screenshot = `${artifacts}/widget-mobile.png`;
    await page.screenshot({ path: screenshot });
    return { screenshot, panel: box };
  },

  /** The network drops: typed text stays, the widget reconnects and sends it. */
  async reconnect() {
    const { context, page } = await openDemo();
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    await context.setOffline(true);
    await waitStatus(page, "offline");
    await w.input.fill(expected.question);
    await w.input.press("Enter");
    assert.equal(await w.input.inputValue(), expected.question);
    assert.equal(await w.user.count(), 0);
    const status = await page.locator(".status").textContent();
    assert.ok(status.includes("Reconnecting") && status.includes("911") && status.includes("988"), status);
    await context.setOffline(false);
    await waitOnline(page);
    assert.equal(await w.input.inputValue(), expected.question);
    await w.input.press("Enter");
    await w.bot.nth(1).waitFor();
    assert.equal(await bubbleText(w.bot.nth(1)), expected.answer);
    return {};
  },

  /** socket.io blocked (as by some proxies): the widget talks over REST instead. */
  async rest_fallback() {
    const { page, w } = await openOnRest();
    await ask(page, expected.question, 2);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.answer);
    await ask(page, expected.crisis_message, 3);
    await assertCrisisLinks(page);
    return {};
  },
  /** By default the chat lives in the tab's sessionStorage only, and goes after 30 idle minutes. */
  async storage() {
    const { context, page } = await openDemo();
    const w = widget(page);
    // What an earlier version kept in localStorage for good is deleted.
    await page.evaluate(() => {
      localStorage.setItem("withdrawal-help:session", JSON.stringify("0".repeat(32)));
      localStorage.setItem("withdrawal-help:transcript", JSON.stringify([{ from: "user", text: "old" }]));
    });
    await page.reload();
    assert.deepEqual(await stored(page), NOTHING_KEPT);  // and nothing is kept before the first message
    await w.launcher.click();
    await waitOnline(page);
    await ask(page, expected.question, 2);
    const { session: chat, local, keys } = await stored(page);
    assert.deepEqual([local, keys], [null, []]);
    assert.deepEqual(chat.transcript.map((entry) => entry.text), [expected.question, expected.answer]);

    // Another tab of the same browser does not see it.
    const other = await openPage(context);
    assert.equal(await widget(other).user.count(), 0);
    assert.deepEqual(await stored(other), NOTHING_KEPT);
    await other.close();

    // 29 idle minutes: still there after a reload; 31: deleted when the page loads.
    await putStored(page, "sessionStorage", JSON.stringify({ ...chat, lastMessageAt: Date.now() - 29 * MINUTE }));
    await page.reload();
    assert.equal(await w.user.count(), 1);
    await putStored(page, "sessionStorage", JSON.stringify({ ...chat, lastMessageAt: Date.now() - 31 * MINUTE }));
    await page.reload();
    assert.equal(await w.user.count(), 0);
    assert.deepEqual(await stored(page), NOTHING_KEPT);
    assert.deepEqual(page.errors, []);
    return {};
  },

  /** A page left open forgets the chat, on screen and in storage, after `idleMinutes` (6 s on idle.html). */
  async idle() {
    const { page } = await openEmbedded("idle.html");
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    await ask(page, expected.question, 2);
    assert.notEqual((await stored(page)).session, null);
    await w.user.waitFor({ state: "detached", timeout: 20000 });
    assert.equal(await w.bot.count(), 1);
    assert.deepEqual(await stored(page), NOTHING_KEPT);
    await page.reload();
    assert.equal(await w.user.count(), 0);
    assert.deepEqual(page.errors, []);
    return {};
  },

  /**
   * A site that opts in keeps the chat in localStorage (for 1440 idle minutes on
   * local.html), so other tabs see it; "Start over" deletes it.
   */
  async local_storage() {
    const { context, page } = await openEmbedded("local.html");
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    await ask(page, expected.question, 2);
    const { session, local: chat } = await stored(page);
    assert.equal(session, null);
    assert.deepEqual(chat.transcript.map((entry) => entry.text), [expected.question, expected.answer]);

    // 23 idle hours later, in a new tab, it is still there (1440 minutes).
    await putStored(page, "localStorage", JSON.stringify({ ...chat, lastMessageAt: Date.now() - 23 * 60 * MINUTE }));
    const other = await openPage(context, page.url());
    assert.equal(await bubbleText(widget(other).bot.nth(1)), expected.answer);

    await page.getByRole("button", { name: "Start over" }).click();
    assert.deepEqual(await stored(page), NOTHING_KEPT);
    await other.reload();
    assert.equal(await widget(other).user.count(), 0);
    assert.deepEqual([...page.errors, ...other.errors], []);
    return {};
  },

  /** Malformed replies (socket.io and REST) and corrupt saved chats never break the widget. */
  async malformed() {
    // socket.io: the first reply arrives with an object as its text and broken quick replies.
    const context = await browser.newContext();
    let broken = false;
    await context.routeWebSocket(/socket\.io/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((frame) => {
        // An event is "42" and a JSON array in socket.io's protocol.
        if (!broken && typeof frame === "string" && frame.startsWith('42["bot_uttered"')) {
          broken = true;
          const [event, message] = JSON.parse(frame.slice(2));
          const replies = [null, { title: 7, payload: "/x" }, ...(message.quick_replies || [])];
          frame = "42" + JSON.stringify([event, { ...message, text: { html: message.text }, quick_replies: replies }]);
        }
        ws.send(frame);
      });
    });
    const page = await openPage(context);
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    await ask(page, expected.question, 2);
    assert.equal(broken, true);
    assert.match(await bubbleText(w.bot.nth(1)), /911.*988/);  // a kind line instead
    assert.equal(await w.replies.first().textContent(), expected.button_title);
    const titles = await w.replies.allTextContents();
    assert.ok(titles.every((title) => title.trim()));
    const shownBefore = await w.bot.allTextContents();
    await page.reload();
    assert.deepEqual(await w.bot.allTextContents(), shownBefore);
    assert.deepEqual(await w.replies.allTextContents(), titles);
    await waitOnline(page);
    await page.getByRole("button", { name: "Start over" }).click();
    assert.equal(await w.bot.count(), 1);
    assert.deepEqual(await stored(page), NOTHING_KEPT);
    await ask(page, expected.question, 2);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.answer);

    // Corrupt saved chats are deleted, whatever is wrong with them.
    const chat = (await stored(page)).session;
    const corrupt = [
      "{not json",
      JSON.stringify([{ from: "user", text: "the shape of an earlier version" }]),
      JSON.stringify({ ...chat, transcript: [...chat.transcript, { from: "bot", text: { html: "<b>x</b>" } }] }),
      JSON.stringify({ ...chat, transcript: [{ from: "bot", text: "hi", buttons: [{ title: 1, payload: "/x" }] }] }),
      JSON.stringify({ ...chat, transcript: [{ from: "someone", text: "hi" }] }),
      JSON.stringify({ ...chat, session: { id: 1 } }),
      JSON.stringify({ ...chat, lastMessageAt: Date.now() + 60 * MINUTE }),
    ];
    for (const value of corrupt) {
      await putStored(page, "sessionStorage", value);
      await page.reload();
      assert.equal(await w.bot.count(), 1, value);
      assert.deepEqual(await stored(page), NOTHING_KEPT, value);
      await w.launcher.click();
      assert.ok(await w.panel.isVisible());
    }

    // REST: a reply whose text is no string, one the widget cannot show, broken buttons, no list.
    const rest = await browser.newContext();
    await blockSocket(rest);
    await fakeRest(rest, [
      { body: [
        { recipient_id: "x", text: ["not", "text"], buttons: "none" },
        { recipient_id: "x", image: "https://example.org/a.png" },
        { recipient_id: "x", text: "Still here. [Call 988](tel:988)", buttons: [{ payload: "/deny" }, { title: "Yes", payload: "/affirm" }] },
      ] },
      { body: { text: "not a list" } },
    ]);
    const restPage = await openPage(rest);
    const r = widget(restPage);
    await r.launcher.click();
    await waitStatus(restPage, "rest");
    await ask(restPage, "hello", 3);
    assert.match(await bubbleText(r.bot.nth(1)), /911.*988/);
    assert.equal(await bubbleText(r.bot.nth(2)), "Still here. Call 988");
    assert.deepEqual(await r.replies.allTextContents(), ["Yes"]);
    await ask(restPage, "hello again", 4);
    assert.match(await bubbleText(r.bot.nth(3)), /911.*988/);
    await ask(restPage, expected.question, 5);
    assert.equal(await bubbleText(r.bot.nth(4)), expected.answer);
    await restPage.reload();
    assert.equal(await r.bot.count(), 5);
    assert.deepEqual([...page.errors, ...restPage.errors], []);
    return { corrupt: corrupt.length };
  },

  /** A refused message (429, 503) shows the server's kind reply; what was typed is kept. */
  async refused() {
    const { page, w } = await openOnRest([
      { status: 429, body: expected.too_fast_body },
      { status: 503, body: "<html><body>503 Service Temporarily Unavailable</body></html>" },
    ]);
    await ask(page, expected.question, 2);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.too_fast);
    assert.equal(await w.user.count(), 0);
    assert.equal(await w.input.inputValue(), expected.question);

    await w.input.press("Enter");  // a body that is not the assistant's: a fixed kind line
    await w.bot.nth(2).waitFor();
    assert.match(await bubbleText(w.bot.nth(2)), /911.*988/);
    assert.equal(await w.input.inputValue(), expected.question);
    assert.deepEqual(await stored(page), NOTHING_KEPT);  // refusals are not kept

    await w.input.press("Enter");
    await w.bot.nth(3).waitFor();
    assert.equal(await bubbleText(w.bot.nth(3)), expected.answer);
    assert.equal(await bubbleText(w.user.nth(0)), expected.question);
    assert.deepEqual(page.errors, []);
    return {};
  },

  /**
   * A message the server finds too long (413: a site's lower `max_message_chars`, or a
   * proxy's body limit) shows the server's kind reply with the emergency numbers; what
   * was typed is kept to shorten.
   */
  async too_long() {
    const { page, w } = await openOnRest([{ status: 413, body: expected.too_long_body }]);
    await ask(page, expected.question, 2);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.too_long);
    assert.match(await bubbleText(w.bot.nth(1)), /911.*988/);
    assert.equal(await w.user.count(), 0);
    assert.equal(await w.input.inputValue(), expected.question);
    assert.deepEqual(await stored(page), NOTHING_KEPT);  // refusals are not kept
    assert.deepEqual(page.errors, []);
    return {};
  },

  /** Over REST, "Start over" deletes the conversation on the server too, and a new one begins. */
  async rest_start_over() {
    const { page, w } = await openOnRest();
    await ask(page, expected.question, 2);
    const session = (await stored(page)).session.session;
    assert.ok(session.startsWith("web-"), session);  // the id the server issued
    const forgotten = page.waitForResponse((response) => response.url().endsWith("/webhooks/rest/forget"));
    await page.getByRole("button", { name: "Start over" }).click();
    const answer = await forgotten;
    assert.equal(answer.status(), 200);
    assert.deepEqual(JSON.parse(answer.request().postData()), { sender: session });
    assert.deepEqual(await answer.json(), { forgotten: true });
    assert.equal(await w.user.count(), 0);
    assert.deepEqual(await stored(page), NOTHING_KEPT);
    await ask(page, expected.question, 2);  // a new conversation, with a new id
    const next = (await stored(page)).session.session;
    assert.ok(next.startsWith("web-") && next !== session, next);
    assert.deepEqual(page.errors, []);
    // tests/test_widget.py checks that the server deleted the first conversation, not the new one.
    return { started_over: session, kept: next };
  },

  /** The demo page talks to the server written in it, never to one named in its URL. */
  /** axe-core (WCAG 2.1 A and AA, and best practice) finds nothing on the closed widget,
   * the open one and after a crisis reply, at 1280 px and at 360 px. */
  async accessibility() {
    const axeSource = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
    const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];
    const found = [];
    let checks = 0;
    for (const viewport of [{ width: 1280, height: 800 }, { width: 360, height: 740 }]) {
      const { context, page } = await openDemo(viewport);
      await page.addScriptTag({ content: axeSource });
      const check = async (state) => {
        const result = await page.evaluate((tags) => axe.run(document, { runOnly: { type: "tag", values: tags } }), tags);
        checks += 1;
        for (const v of result.violations) {
          found.push(`${viewport.width} px, ${state}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" > ")).join("; ")}`);
        }
      };
      const w = widget(page);
      await check("closed");
      await w.launcher.click();
      await waitOnline(page);
      await check("open");
      await ask(page, expected.crisis_message, 2);
      await assertCrisisLinks(page);
      await check("after a crisis reply");
      await context.close();
    }
    assert.deepEqual(found, []);
    return { checks };
  },

  async demo_server() {
    const context = await browser.newContext();
    const hosts = new Set();
    context.on("request", (request) => hosts.add(new URL(request.url()).host));
    context.on("page", (page) => page.on("websocket", (ws) => hosts.add(new URL(ws.url()).host)));
    const page = await openPage(context, `${demoUrl}?server=${encodeURIComponent("http://attacker.invalid:5005")}`);
    const w = widget(page);
    await w.launcher.click();
    await waitOnline(page);
    await ask(page, expected.question, 2);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.answer);
    assert.equal(hosts.has("attacker.invalid:5005"), false);
    assert.equal(hosts.has(new URL(expected.server).host), true);
    return { hosts: [...hosts] };
  },
};

try {
  const result = await scenarios[scenario]();
  console.log(JSON.stringify({ scenario, ok: true, ...result }));
} finally {
  await browser.close();
}
