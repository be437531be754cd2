// The report in a real browser: headless Chromium (Debian's `chromium`, installed by
// .ci/run) opens a generated page, finds the violation banner and the red operations,
// clicks one and reads its details, zooms, and leaves a screenshot in test-artifacts/.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { buildReport, humanSummary } from "../../src/report.js";
import { renderReport } from "../../src/report-page.js";
import { runScenario } from "../../src/runner.js";
import { parseScenario } from "../../src/scenario.js";

function findChromium(): string | null {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim() || null;
    } catch {}
  }
  return null;
}

const ROOT = new URL("../../", import.meta.url).pathname;
const ARTIFACTS = `${ROOT}test-artifacts/`;
const chromiumPath = findChromium();

if (chromiumPath === null) {
  console.log(
    "SKIPPED report.browser: no chromium on this machine (apt install chromium); .ci/run installs it",
  );
} else {
  test("a report in headless Chromium: banner, red operations, details on click, zoom, no script errors", async () => {
    const { chromium } = await import("playwright-core");
    const sc = parseScenario(readFileSync(`${ROOT}seeds/bug-compaction-revision-rollback.json`, "utf8"));
    const r = runScenario(sc);
    const page = renderReport(buildReport(r, humanSummary(r, null)));
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = `${ARTIFACTS}report.html`;
    writeFileSync(file, page);
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
    try {
      const tab = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors: string[] = [];
      tab.on("pageerror", (e) => errors.push(String(e)));
      await tab.goto(`file://${file}`);
      const banner = await tab.textContent("#banner h2");
      assert.match(banner ?? "", /Violation: .*linearizability/);
      const red = await tab.$$("a.bad-op");
      assert.ok(red.length > 0, "the operations that could not be placed are listed");
      const stuck = r.validation.linearizability.stuck[0] as number;
      await tab.click(`a.bad-op[data-op="${stuck}"]`);
      const details = (await tab.textContent("#details")) ?? "";
      const src = r.artifacts.history.operations.find((o) => o.id === stuck);
      assert.ok(src);
      assert.match(details, new RegExp(`#${stuck} by client ${src.client}`));
      assert.match(details, /could not be placed/);
      assert.ok(await tab.$("#details dl.bad"), "the details say the operation is a bad one");
      // zoom in with the wheel over the canvas, then back to the whole run: no errors
      const box = await tab.locator("#timeline").boundingBox();
      assert.ok(box && box.width > 100 && box.height > 40, "the timeline is drawn");
      await tab.mouse.move(box.x + box.width / 2, box.y + 10);
      await tab.mouse.wheel(0, -600);
      await tab.click("#reset");
      // a pixel of the canvas in the red of a bad operation exists (the stuck one is drawn)
      // counted in the page (a string: the tests are typed without the DOM library)
      const reds = (await tab.evaluate(`(() => {
        const c = document.getElementById("timeline");
        const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] === 213 && px[i + 1] === 0 && px[i + 2] === 0) n++;
        return n;
      })()`)) as number;
      assert.ok(reds > 0, "red operations are drawn on the timeline");
      await tab.screenshot({ path: `${ARTIFACTS}report.png`, fullPage: true });
      assert.equal(errors, [], "the page's script ran without errors");
    } finally {
      await browser.close();
    }
  });
}

test.run();
