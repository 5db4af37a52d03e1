// node web/tools/browser.mjs URL [--eval EXPR] [--screenshot PATH] [--size 1100x760]
// Opens URL in Debian's headless Chromium (playwright-core, no browser download), waits for
// window.vaeportReady, optionally evaluates EXPR (may return a promise) and prints its JSON.
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
const url = args[0];
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const [width, height] = (option("--size") ?? "1200x800").split("x").map(Number);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width, height } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(url);
  await page.waitForFunction(() => window.vaeportReady || window.vaeportError, null, { timeout: 60000 });
  const failure = await page.evaluate(() => window.vaeportError);
  if (failure || errors.length) throw new Error(failure || errors.join("; "));
  let value = null;
  if (option("--eval")) value = await page.evaluate(option("--eval"));
  if (option("--screenshot")) await page.screenshot({ path: option("--screenshot") });
  process.stdout.write(JSON.stringify(value));
} finally {
  await browser.close();
}
