// The streams page with many streams, in headless Chromium: how long until every stream is
// listed, then frames per second while the list scrolls from top to bottom and back, and how
// long a sort by messages takes. Started by `make bench` (scenario 15, crates/bench), which
// passes the console and the cluster in the environment:
//   JSC_URL, JSC_EMAIL, JSC_PASSWORD, JSC_CLUSTER, JSC_STREAMS (how many to expect)
// Prints one line of JSON.
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through \`make bench\``);
  return v;
};
const URL = env('JSC_URL');
const STREAMS = Number(env('JSC_STREAMS'));

const browser = await chromium.launch({
  executablePath: process.env.JSC_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
page.setDefaultTimeout(120_000);
await page.goto(`${URL}/`);
await page.getByLabel('Email').fill(env('JSC_EMAIL'));
await page.getByLabel('Password').fill(env('JSC_PASSWORD'));
await page.getByRole('button', { name: 'Sign in' }).click();
await page.getByRole('heading', { name: 'Clusters', level: 1 }).waitFor();

const t0 = Date.now();
await page.goto(`${URL}/clusters/${encodeURIComponent(env('JSC_CLUSTER'))}/streams`);
const total = STREAMS.toLocaleString('en-US');
await page.getByText(`${total} of ${total} streams`).waitFor();
const loadMs = Date.now() - t0;

/** Scrolls the list for `ms` at `pxPerFrame`, top to bottom and back; the frames drawn. */
async function scroll(ms, pxPerFrame) {
  return page.evaluate(
    ([ms, px]) =>
      new Promise((done) => {
        const box = document.querySelector('.vbody');
        const stamps = [];
        let dir = 1;
        const start = performance.now();
        function frame(t) {
          stamps.push(t);
          const max = box.scrollHeight - box.clientHeight;
          let next = box.scrollTop + dir * px;
          if (next >= max) (next = max), (dir = -1);
          if (next <= 0) (next = 0), (dir = 1);
          box.scrollTop = next;
          if (t - start < ms) requestAnimationFrame(frame);
          else done({ stamps, rows: box.querySelectorAll('[role=row]').length, height: box.scrollHeight });
        }
        requestAnimationFrame(frame);
      }),
    [ms, pxPerFrame],
  );
}

function fps(stamps) {
  const seconds = (stamps[stamps.length - 1] - stamps[0]) / 1000;
  const gaps = stamps.slice(1).map((t, i) => t - stamps[i]).sort((a, b) => a - b);
  // The worst one-second window.
  let worst = Infinity;
  for (let i = 0, j = 0; i < stamps.length; i++) {
    while (j < stamps.length && stamps[j] - stamps[i] < 1000) j++;
    if (stamps[stamps.length - 1] - stamps[i] < 1000) break;
    worst = Math.min(worst, j - i);
  }
  return {
    mean: (stamps.length - 1) / seconds,
    worstSecond: worst === Infinity ? (stamps.length - 1) / seconds : worst,
    p95FrameMs: gaps[Math.floor(gaps.length * 0.95)],
    maxFrameMs: gaps[gaps.length - 1],
  };
}

await scroll(1000, 200); // warm-up
const slow = await scroll(5000, 120);
const fast = await scroll(5000, 2000);

const s0 = Date.now();
await page.getByRole('button', { name: 'Messages' }).click();
await page.getByRole('columnheader', { name: /Messages/ }).and(page.locator('[aria-sort=descending]')).waitFor();
await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
const sortMs = Date.now() - s0;

const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
console.log(
  JSON.stringify({
    streams: STREAMS,
    loadMs,
    sortMs,
    renderedRows: slow.rows,
    slow: fps(slow.stamps),
    fast: fps(fast.stamps),
    heapMiB: heap ? heap / 1048576 : null,
  }),
);
await browser.close();
