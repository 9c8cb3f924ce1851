// Opens an unsubscribe link in headless Chromium (Debian's /usr/bin/chromium), keeps a screenshot
// of the confirmation page, presses "Stop all mail", keeps a screenshot of the result, and prints
// what it saw as JSON for tests/browser_test.py to check.
// Usage: node unsubscribe.js URL SCREENSHOT_DIR
const { chromium } = require("playwright-core");

(async () => {
  const [url, dir] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const seen = { requests: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });  // a phone
    page.on("request", (r) => seen.requests.push(r.method() + " " + r.url()));
    page.on("console", (m) => seen.requests.push("console " + m.text()));
    const first = await page.goto(url, { timeout: 10000 });
    seen.first_status = first.status();
    seen.first_text = await page.innerText("main");
    seen.first_width = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.screenshot({ path: dir + "/unsubscribe-confirm.png", fullPage: true });
    const [done] = await Promise.all([
      page.waitForNavigation({ timeout: 10000 }),
      page.getByRole("button", { name: /Stop all mail/ }).click(),
    ]);
    seen.second_status = done.status();
    seen.second_url = page.url();
    seen.second_text = await page.innerText("main");
    await page.screenshot({ path: dir + "/unsubscribe-done.png", fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + "\n");
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + "\n");
  process.exit(1);
});
