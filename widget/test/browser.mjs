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

/** A fresh page on the demo; dialogs are recorded (and dismissed), never expected. */
async function openDemo(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.dialogs = [];
  page.on("dialog", (dialog) => {
    page.dialogs.push(dialog.message());
    dialog.dismiss();
  });
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(demoUrl);
  return { context, page };
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
  assert.equal(await crisis.getAttribute("role"), "alert");
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
    assert.equal(await w.crisis.getAttribute("role"), null);  // shown, not announced again
    await waitOnline(page);
    // The reloaded page continues the server's conversation: "yes" answers "are you safe?".
    await w.replies.filter({ hasText: expected.safe_title }).click();
    await w.bot.nth(before.length).waitFor();
    assert.equal(await bubbleText(w.bot.nth(before.length)), expected.safe_answer);

    const session = await page.evaluate(() => localStorage.getItem("withdrawal-help:session"));
    await page.getByRole("button", { name: "Start over" }).click();
    assert.equal(await w.user.count(), 0);
    assert.equal(await w.bot.count(), 1);  // the welcome line only
    assert.notEqual(await page.evaluate(() => localStorage.getItem("withdrawal-help:session")), session);
    await page.reload();
    assert.equal(await w.user.count(), 0);
    return { screenshot, bubbles_before_reload: before.length };
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
    await page.waitForFunction(() => document.querySelector("#withdrawal-help-chat")
      .shadowRoot.querySelector(".root").dataset.status === "offline");
    await w.input.fill(expected.question);
    await w.input.press("Enter");
    assert.equal(await w.input.inputValue(), expected.question);
    assert.equal(await w.user.count(), 0);
    assert.ok((await page.locator(".status").textContent()).includes("Reconnecting"));
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
    const context = await browser.newContext();
    await context.route("**/socket.io/**", (route) => route.abort());
    await context.routeWebSocket(/socket\.io/, (ws) => ws.close());
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(demoUrl);
    const w = widget(page);
    await w.launcher.click();
    await page.waitForFunction(() => document.querySelector("#withdrawal-help-chat")
      .shadowRoot.querySelector(".root").dataset.status === "rest");
    await ask(page, expected.question, 2);
    assert.equal(await bubbleText(w.bot.nth(1)), expected.answer);
    await ask(page, expected.crisis_message, 3);
    await assertCrisisLinks(page);
    return {};
  },
};

try {
  const result = await scenarios[scenario]();
  console.log(JSON.stringify({ scenario, ok: true, ...result }));
} finally {
  await browser.close();
}
