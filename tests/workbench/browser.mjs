// Drives the trainers' workbench in headless Chromium (the Debian package, with
// playwright-core from widget/node_modules). Usage: node browser.mjs <scenario> <artifacts dir>
// with the workbench's address, an account and what to look for as JSON on stdin.
// Prints a JSON report as its last line; exits non-zero when a check fails.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../../widget/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [scenario, artifacts] = process.argv.slice(2);
const input = JSON.parse(readFileSync(0, "utf8"));
const TIMEOUT = 120000;
const DESKTOP = { width: 1280, height: 800 };
const TABLET = { width: 768, height: 1024 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const report = { errors: [], dialogs: [] };

/** A signed-in tab at `viewport`; dialogs and script errors are recorded, never expected. */
async function signedIn(viewport = DESKTOP, options = {}) {
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("dialog", (dialog) => { report.dialogs.push(dialog.message()); dialog.dismiss(); });
  page.on("pageerror", (error) => report.errors.push(error.message));
  await page.goto(input.url + "/");
  assert.equal(new URL(page.url()).pathname, "/signin", "without a session the inbox sends to sign-in");
  await page.fill("#name", input.user);
  await page.fill("#password", input.password);
  await page.click("button[type=submit]");
  await page.waitForSelector("h1:has-text('Conversations to review')");
  const cookies = await context.cookies();
  report.cookie = cookies.filter((c) => c.name === "__Host-workbench")
    .map(({ httpOnly, secure, sameSite }) => ({ httpOnly, secure, sameSite }))[0];
  return page;
}

const texts = (page, selector) => page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent.trim()));

/** The inbox's count per flag (and reviewed / not reviewed). */
const counts = (page) => page.$$eval("[data-count]", (links) =>
  Object.fromEntries(links.map((a) => [a.dataset.count, Number(a.querySelector("strong").textContent)])));

/** Each user message of the open transcript as the page shows it. */
const turns = (page) => page.$$eval(".turn", (items) => items.map((li) => ({
  text: li.querySelector(".user .text").textContent,
  intent: li.querySelector(".intent").textContent,
  topic: li.querySelector(".topic").textContent,
  confidence: li.querySelector(".confidence").textContent,
  replies: [...li.querySelectorAll(".bot .text")].map((n) => n.textContent),
})));

async function openConversation(page, id) {
  await page.goto(`${input.url}/?state=all`);
  await page.click(`a[href="/conversations/${id}"]`);
  await page.waitForSelector(`h1:has-text('${id}')`);
}

/** Types a label into a message's searchable list and sends the correction. */
async function correct(page, turn, label) {
  const field = `#label-${turn}`;
  await page.fill(field, label.slice(0, 4));
  const offered = await page.$eval(field, (input, typed) =>
    [...input.list.options].map((o) => o.value).filter((v) => v.includes(typed)), label.slice(0, 4));
  await page.fill(field, label);
  await Promise.all([page.waitForNavigation(), page.click(`#turn-${turn} button[type=submit]`)]);
  await page.waitForSelector("#correction-result");
  return {
    offered,
    title: await page.textContent("#correction-title"),
    intent: await texts(page, ".written-intent"),
    file: await texts(page, ".written-file"),
    refusal: await texts(page, ".refusal"),
    validation: await texts(page, ".validation"),
  };
}

/** Every link, button and field of the page, reached by pressing Tab from the top. */
async function tabReachesEverything(page) {
  const controls = await page.$$eval("a[href], button:not([disabled]), input:not([type=hidden]), select",
    (nodes) => nodes.map((n, i) => { n.dataset.tabCheck = String(i); return i; }));
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  // A date field takes three presses (month, day, year), so there may be more presses than controls.
  const reached = new Set();
  for (let i = 0; i < 3 * controls.length + 10 && reached.size < controls.length; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement && document.activeElement.dataset.tabCheck);
    if (at !== undefined && at !== null) reached.add(Number(at));
  }
  const missed = await page.$$eval("[data-tab-check]", (nodes, got) =>
    nodes.filter((n) => !got.includes(Number(n.dataset.tabCheck))).map((n) => n.outerHTML.slice(0, 120)), [...reached]);
  return { controls: controls.length, missed };
}

/** axe-core's WCAG 2.1 A/AA and best-practice violations on the page. */
async function axe(page) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() => axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }));
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

const scenarios = {
  /** The weekly loop: inbox, transcript, corrections, a story, "mark reviewed", the charts. */
  async loop() {
    const page = await signedIn();
    report.counts = await counts(page);
    await page.selectOption("#flag", "fallback");
    await page.selectOption("#state", "all");
    await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
    report.fallback_rows = await page.$$eval("[data-conversation]", (rows) => rows.map((r) => r.dataset.conversation));
    await page.screenshot({ path: `${artifacts}/workbench-inbox.png`, fullPage: true });

    await openConversation(page, input.faq);
    report.faq_turns = await turns(page);
    await openConversation(page, input.personal);
    report.personal_turns = await turns(page);

    await openConversation(page, input.unsure);
    report.unsure_turns = await turns(page);
    report.added = await correct(page, 0, input.label);
    await page.screenshot({ path: `${artifacts}/workbench-correction.png`, fullPage: true });
    report.duplicate = await correct(page, 0, input.label);
    report.unknown = await correct(page, 0, "make_coffee");

    await openConversation(page, input.faq);
    await Promise.all([page.waitForNavigation(), page.click("button:has-text('Save as a test story')")]);
    report.story_file = await page.textContent(".story-file");
    await Promise.all([page.waitForNavigation(), page.click("button:has-text('Mark reviewed')")]);
    report.after_review_path = new URL(page.url()).pathname;
    report.unreviewed_rows = await page.$$eval("[data-conversation]", (rows) => rows.map((r) => r.dataset.conversation));
    report.counts_after = await counts(page);

    await page.goto(`${input.url}/charts`);
    await page.fill("#since", input.day);
    await page.fill("#until", input.day);
    await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
    report.figures = Object.fromEntries(await page.$$eval("[data-figure]", (cells) =>
      cells.map((c) => [c.dataset.figure, c.textContent.trim()])));
    report.per_day = await page.$$eval("#per-day tbody tr", (rows) =>
      rows.map((r) => [r.querySelector("th").textContent, Number(r.querySelector("td").textContent)]));
    report.topics = Object.fromEntries(await page.$$eval("#topics tbody tr", (rows) =>
      rows.map((r) => [r.querySelector("th").textContent, Number(r.querySelector("td").textContent)])));
    report.svg_bars = await page.$$eval("svg.chart rect", (bars) => bars.length);
    await page.screenshot({ path: `${artifacts}/workbench-charts.png`, fullPage: true });
  },

  /** A stored message full of HTML and javascript: links is shown as text and runs nothing. */
  async hostile() {
    for (const viewport of [DESKTOP, TABLET]) {
      const page = await signedIn(viewport);
      for (const path of ["/?state=all", `/conversations/${input.hostile}`]) {
        await page.goto(input.url + path);
        await page.waitForTimeout(300);
        const found = await page.evaluate(() => ({
          scripts: document.querySelectorAll("script").length,
          images: document.querySelectorAll("img, iframe, object, embed").length,
          javascript_links: [...document.querySelectorAll("[href], [src], [action]")]
            .filter((n) => /^\s*javascript:/i.test(n.getAttribute("href") || n.getAttribute("src") || n.getAttribute("action"))).length,
          handlers: [...document.querySelectorAll("*")].filter((n) => [...n.attributes].some((a) => a.name.startsWith("on"))).length,
          pwned: window.pwned === true,
        }));
        report[path.startsWith("/?") ? "inbox" : "transcript"] = found;
      }
      report.shown = await texts(page, ".user .text");
      // Following every link the page has runs nothing either.
      for (const href of await page.$$eval("a[href]", (links) => links.map((a) => a.getAttribute("href")))) {
        assert.ok(href.startsWith("/") || href.startsWith("#"), `unexpected link ${href}`);
      }
    }
  },

  /** Tab reaches every control, and axe-core finds nothing, on every page at both widths. */
  async keyboard() {
    report.pages = {};
    for (const [width, viewport] of [["desktop", DESKTOP], ["tablet", TABLET]]) {
      // The pages' policy forbids every script, axe-core's too: it is let in for this check only.
      const page = await signedIn(viewport, { bypassCSP: true });
      for (const path of ["/", "/?state=all", `/conversations/${input.conversation}`, "/charts", "/candidate"]) {
        await page.goto(input.url + path);
        const tab = await tabReachesEverything(page);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        report.pages[`${width} ${path}`] = { ...tab, overflow, axe: await axe(page) };
      }
      // A correction sent with the keyboard alone: focus the field, type, Enter.
      await page.goto(`${input.url}/conversations/${input.conversation}`);
      await page.focus("#label-0");
      await page.keyboard.type("make_coffee");
      await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
      report[`${width}_keyboard_correction`] = await texts(page, ".refusal");
      if (width === "tablet") await page.screenshot({ path: `${artifacts}/workbench-tablet.png`, fullPage: true });
    }
    const signin = await (await browser.newContext({ viewport: TABLET, bypassCSP: true })).newPage();
    await signin.goto(input.url + "/signin");
    report.pages["tablet /signin"] = { ...(await tabReachesEverything(signin)), axe: await axe(signin) };
  },

  /** Trains a candidate model from the page and reads its scores beside the running model's. */
  async candidate() {
    const page = await signedIn();
    await page.goto(`${input.url}/candidate`);
    await Promise.all([page.waitForNavigation(), page.click("button:has-text('Train a candidate model')")]);
    report.progress = [];
    const deadline = Date.now() + input.minutes * 60000;
    for (;;) {
      const state = await page.getAttribute("#job-percent", "data-state");
      const value = Number(await page.getAttribute("#job-progress", "value"));
      if (report.progress.at(-1) !== value) report.progress.push(value);
      report.button_disabled = report.button_disabled || (state === "running" &&
        await page.isDisabled("button:has-text('Train a candidate model')"));
      if (state !== "running") { report.state = state; break; }
      assert.ok(Date.now() < deadline, `still training after ${input.minutes} minutes`);
      await page.waitForTimeout(2000);
      await page.goto(`${input.url}/candidate`);  // as the page's own refresh does
    }
    report.step = await page.textContent("label[for=job-progress]");
    report.comparison = await page.$$eval("#comparison tbody tr", (rows) => rows.map((r) => ({
      measure: r.dataset.measure, cells: [...r.querySelectorAll("td")].map((td) => td.textContent.trim()) })));
    await page.screenshot({ path: `${artifacts}/workbench-candidate.png`, fullPage: true });
  },
};

try {
  await scenarios[scenario]();
} finally {
  await browser.close();
}
report.ok = true;
console.log(JSON.stringify(report));
