// Drives the web console in Debian's Chromium (playwright-core) against a real console and
// real nats-servers, started by the Rust test `ui::web_console_in_a_browser` (tests/e2e/ui.rs),
// which passes them in the environment:
//   JSC_URL            the console, e.g. http://127.0.0.1:PORT
//   JSC_EMAIL, JSC_PASSWORD  the owner's account
//   JSC_SECURED_URL, JSC_SECURED_USER, JSC_SECURED_PASSWORD  a nats-server with a password
//   JSC_ARTIFACTS      where screenshots go
//   JSC_CHROMIUM       the browser (default /usr/bin/chromium)
// Exits non-zero on the first failed step, after a screenshot of the page it failed on.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through \`make test\` (tests/e2e/ui.rs)`);
  return v;
};
const URL = env('JSC_URL');
const ART = env('JSC_ARTIFACTS');
mkdirSync(ART, { recursive: true });
const TIMEOUT = 15_000;

const browser = await chromium.launch({
  executablePath: process.env.JSC_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
async function newPage(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // A CSP violation or an uncaught error anywhere fails the run.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) problems.push(`${name}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  return page;
}

let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  await page.screenshot({ path: join(ART, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

const a11y = [];
/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  a11y.push({ page: name, violations: result.length, serious: bad.length });
  if (bad.length) throw new Error(`accessibility (axe) on ${name}: ${JSON.stringify(bad, null, 1)}`);
}

async function step(name, page, fn) {
  const t = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    if (page) await screenshot(page, `FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
    await browser.close();
    process.exit(1);
  }
}

/** A GraphQL call with the session the page holds (for what a test does beside the browser). */
/** One request to a NATS server over its text protocol, as a client named `outside-script`:
 * the decoded JSON answer. */
async function natsRequest(url, user, pass, subject, body) {
  const net = await import('node:net');
  const { hostname, port } = new globalThis.URL(url.replace(/^nats:/, 'http:'));
  const socket = net.connect(Number(port), hostname);
  const payload = Buffer.from(JSON.stringify(body));
  let buffered = Buffer.alloc(0);
  let sent = false;
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${subject}`)), TIMEOUT);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const text = buffered.toString('latin1');
      if (text.startsWith('INFO') && !sent) {
        sent = true;
        const connect = JSON.stringify({ name: 'outside-script', user, pass, verbose: false, pedantic: false, headers: true });
        socket.write(`CONNECT ${connect}\r\nSUB _INBOX.outside 1\r\n`);
        socket.write(`PUB ${subject} _INBOX.outside ${payload.length}\r\n`);
        socket.write(Buffer.concat([payload, Buffer.from('\r\n')]));
      }
      const at = text.indexOf('MSG _INBOX.outside');
      if (at < 0) return;
      const eol = text.indexOf('\r\n', at);
      if (eol < 0) return;
      const size = Number(text.slice(at, eol).split(' ').pop());
      if (buffered.length < eol + 2 + size) return;
      clearTimeout(timer);
      socket.end();
      resolve(JSON.parse(buffered.subarray(eol + 2, eol + 2 + size).toString('utf8')));
    });
  });
}

async function gql(page, query, variables = {}) {
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('jsconsole.session')).accessToken);
  const res = await fetch(`${URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const page = await newPage('owner');

await step('the console opens on the sign-in page, not the explorer', page, async () => {
  const res = await page.goto(`${URL}/`);
  const csp = res.headers()['content-security-policy'];
  if (!csp || !csp.includes("script-src 'self'") || csp.includes('unsafe-inline')) throw new Error(`weak CSP: ${csp}`);
  await page.getByRole('heading', { name: 'Sign in to JetStream Console' }).waitFor();
  await screenshot(page, 'sign-in');
  await accessible(page, 'sign-in');
});

await step('a wrong password is refused with a message', page, async () => {
  await page.getByLabel('Email').fill(env('JSC_EMAIL'));
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'UNAUTHENTICATED' }).waitFor();
});

await step('sign in', page, async () => {
  await page.getByLabel('Password').fill(env('JSC_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Clusters', level: 1 }).waitFor();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  await screenshot(page, 'clusters-empty');
  await accessible(page, 'clusters');
});

let clusterId;
await step('register a cluster with a password and test it', page, async () => {
  await page.getByRole('button', { name: 'Add cluster' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a cluster' });
  await dialog.getByLabel('Name').fill('secured');
  await dialog.getByLabel('Server URLs').fill(env('JSC_SECURED_URL'));
  await dialog.getByLabel('Tags').fill('test, ui');
  await dialog.getByLabel('Sample every (seconds)').fill('1');
  await accessible(page, 'add-cluster');
  await dialog.getByRole('button', { name: 'Next' }).click();
  await dialog.getByLabel('Authentication').selectOption('USER_PASSWORD');
  await dialog.getByLabel('Username').fill(env('JSC_SECURED_USER'));
  await dialog.getByLabel('Password').fill(env('JSC_SECURED_PASSWORD'));
  await screenshot(page, 'add-cluster-auth');
  await dialog.getByRole('button', { name: 'Add cluster' }).click();
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await dialog.getByRole('status').filter({ hasText: 'Connected: nats-server' }).waitFor();
  await screenshot(page, 'add-cluster-tested');
  await dialog.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('heading', { name: 'secured', level: 1 }).waitFor();
  clusterId = decodeURIComponent(new globalThis.URL(page.url()).pathname.split('/')[2]);
  await page.getByText('USER_PASSWORD').waitFor();
  await page.getByRole('heading', { name: 'JetStream account' }).waitFor();
  await page.getByRole('meter', { name: /^Streams 0 of/ }).waitFor();
  await screenshot(page, 'cluster-detail');
  await accessible(page, 'cluster-detail');
});

await step('a bad stream name shows the API\'s VALIDATION message on its field', page, async () => {
  await page.getByRole('link', { name: 'Streams' }).click();
  await page.getByRole('button', { name: 'Create stream' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a stream' });
  await dialog.getByLabel('Name').fill('ORDERS');
  await dialog.getByLabel('Subjects').fill('orders.>');
  // Checked in the page as the API checks it, with the API's words.
  await dialog.getByLabel('Max age').fill('a week');
  await dialog.getByRole('button', { name: 'Create stream' }).click();
  await dialog.locator('.field-error').filter({ hasText: "'a week' is not a duration; write e.g. 30s, 5m, 1h30m or 7d" }).waitFor();
  let invalid = await dialog.locator('[aria-invalid="true"]').getAttribute('name');
  if (invalid !== 'maxAge') throw new Error(`the error was shown on ${invalid}, not maxAge`);
  // Refused by the API, which names the field (extensions.field).
  await dialog.getByLabel('Max age').fill('7d');
  await dialog.getByLabel('Subjects').fill('orders.>, orders.eu');
  await dialog.getByRole('button', { name: 'Create stream' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'VALIDATION' }).waitFor();
  await dialog.locator('.field-error').filter({ hasText: "subjects: 'orders.>' and 'orders.eu' overlap" }).waitFor();
  invalid = await dialog.locator('[aria-invalid="true"]').getAttribute('name');
  if (invalid !== 'subjects') throw new Error(`the error was shown on ${invalid}, not subjects`);
  await screenshot(page, 'create-stream-invalid');
  await accessible(page, 'create-stream-invalid');
});

await step('create a stream', page, async () => {
  const dialog = page.getByRole('dialog', { name: 'Create a stream' });
  await dialog.getByLabel('Subjects').fill('orders.>');
  await dialog.getByRole('button', { name: 'Create stream' }).click();
  await page.getByRole('heading', { name: 'ORDERS', level: 1 }).waitFor();
  if (!page.url().endsWith('/streams/ORDERS')) throw new Error(`unexpected URL ${page.url()}`);
  await screenshot(page, 'stream-overview');
  await accessible(page, 'stream-overview');
});

await step('publish a message and see it in the browser', page, async () => {
  await page.getByRole('link', { name: 'Messages' }).click();
  await page.getByText('No message.').waitFor();
  await page.getByRole('button', { name: 'Publish', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Publish to ORDERS' });
  await dialog.getByLabel('Subject').fill('orders.eu');
  await dialog.getByLabel('Headers').fill('Nats-Msg-Id: order-1');
  await dialog.getByLabel('Payload').fill('{"id": 1, "item": "espresso machine"}');
  await dialog.getByRole('button', { name: 'Publish', exact: true }).click();
  await dialog.getByRole('status').filter({ hasText: 'Stored as sequence 1' }).waitFor();
  await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  const row = page.getByRole('row').filter({ hasText: 'orders.eu' });
  await row.filter({ hasText: 'espresso machine' }).waitFor();
  await row.getByRole('button', { name: '1' }).click();
  await page.getByText('order-1').waitFor();
  await screenshot(page, 'stream-messages');
  await accessible(page, 'stream-messages');
});

await step('create a consumer and watch its lag live', page, async () => {
  await page.getByRole('link', { name: 'Consumers' }).click();
  await page.getByRole('button', { name: 'Create consumer' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a consumer' });
  await dialog.getByLabel('Durable name').fill('billing');
  await dialog.getByRole('button', { name: 'Create consumer' }).click();
  await page.getByRole('heading', { name: 'billing', level: 1 }).waitFor();
  const lag = page.getByTestId('consumer-lag');
  await page.waitForFunction(() => document.querySelector('[data-testid=consumer-lag]')?.textContent === '1');
  // Two more messages from outside the page: the lag moves without a reload.
  for (const id of [2, 3]) {
    await gql(page, 'mutation($c: ID!, $p: String!) { publishMessage(input: {clusterId: $c, stream: "ORDERS", subject: "orders.us", payload: $p}) { ack { sequence } } }', { c: clusterId, p: `{"id": ${id}}` });
  }
  await page.waitForFunction(() => document.querySelector('[data-testid=consumer-lag]')?.textContent === '3', null, { timeout: TIMEOUT });
  if ((await lag.textContent()) !== '3') throw new Error('lag did not reach 3');
  await screenshot(page, 'consumer-detail');
  await accessible(page, 'consumer-detail');
  await page.getByRole('link', { name: 'ORDERS' }).last().click();
  await page.getByTestId('lag-billing').filter({ hasText: '3' }).waitFor();
  await screenshot(page, 'stream-consumers');
  await accessible(page, 'stream-consumers');
  await page.getByRole('link', { name: 'Metrics' }).click();
  await page.getByRole('heading', { name: 'Messages in per second' }).waitFor();
  await screenshot(page, 'stream-metrics');
  await accessible(page, 'stream-metrics');
});

// A real local HTTP server as the webhook receiver.
const received = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ url: req.url, headers: req.headers, body });
    res.writeHead(204).end();
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hook = `http://127.0.0.1:${receiver.address().port}/hook`;

await step('a webhook channel with a test send that arrives', page, async () => {
  await page.getByRole('link', { name: 'Alerts' }).click();
  await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
  await page.getByText('Nothing is firing.').waitFor();
  await accessible(page, 'alerts');
  await page.getByRole('link', { name: 'Channels' }).click();
  await page.getByRole('button', { name: 'New channel' }).click();
  const dialog = page.getByRole('dialog', { name: 'New notification channel' });
  await dialog.getByLabel('Name').fill('ops-hook');
  await dialog.getByLabel('URL', { exact: true }).fill(hook);
  await dialog.getByLabel('Signing secret').fill('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  await accessible(page, 'new-channel');
  await dialog.getByRole('button', { name: 'Create channel' }).click();
  const row = page.getByRole('row').filter({ hasText: 'ops-hook' });
  await row.getByRole('button', { name: 'Send a test' }).click();
  await row.getByText('delivered').waitFor();
  if (!received.length) throw new Error('the receiver got nothing');
  if (!received[0].headers['webhook-signature']?.startsWith('v1,')) throw new Error(`unsigned: ${JSON.stringify(received[0].headers)}`);
  await screenshot(page, 'alert-channels');
  await accessible(page, 'alert-channels');
});

await step('a lag rule, previewed, fires and is acknowledged; a silence is set', page, async () => {
  await page.getByRole('link', { name: 'Rules' }).click();
  await page.getByRole('button', { name: 'New rule' }).click();
  const dialog = page.getByRole('dialog', { name: 'New alert rule' });
  await dialog.getByLabel('Name').fill('billing behind');
  await dialog.getByLabel('Severity').selectOption('CRITICAL');
  await dialog.getByLabel('Condition').selectOption('CONSUMER_LAG');
  await dialog.getByLabel('Threshold').fill('2');
  await dialog.getByLabel('For', { exact: true }).fill('0s');
  await dialog.getByLabel('Streams').fill('ORD*');
  await dialog.getByLabel('Summary').fill('{{ consumer }} has {{ value }} pending');
  await dialog.getByRole('button', { name: 'Preview on the last 24 h' }).click();
  await dialog.getByText(/Over the last 24 h \(\d+ samples\) this rule would have fired (once|\d+ times)/).waitFor();
  await screenshot(page, 'alert-rule-builder');
  await accessible(page, 'alert-rule-builder');
  await dialog.getByRole('button', { name: 'Create rule' }).click();
  await page.getByRole('row').filter({ hasText: 'billing behind' }).waitFor();
  await page.getByRole('link', { name: 'Active' }).click();
  const alert = page.getByRole('row').filter({ hasText: 'billing behind' }).filter({ hasText: 'firing' });
  await alert.getByText('billing has 3 pending').waitFor({ timeout: 30_000 });
  await alert.getByRole('button', { name: 'Acknowledge' }).click();
  await alert.getByText(`Acknowledged by ${env('JSC_EMAIL')}`).waitFor();
  await screenshot(page, 'alerts-firing');
  await accessible(page, 'alerts-firing');
  await page.getByRole('link', { name: 'Silences' }).click();
  await page.getByRole('button', { name: 'New silence' }).click();
  const sil = page.getByRole('dialog', { name: 'New silence' });
  await sil.getByLabel('Matchers').fill('stream=ORDERS');
  await sil.getByLabel('Comment').fill('maintenance of billing');
  await sil.getByRole('button', { name: 'Silence' }).click();
  await page.getByRole('row').filter({ hasText: 'maintenance of billing' }).filter({ hasText: 'active' }).waitFor();
  await accessible(page, 'alert-silences');
});

await step('republish with a dry run first, then follow the job', page, async () => {
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/ORDERS/messages`);
  await page.getByRole('row').filter({ hasText: 'orders.eu' }).waitFor();
  await page.getByRole('textbox', { name: 'Subject filter' }).fill('orders.eu');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('button', { name: 'Republish' }).click();
  const dialog = page.getByRole('dialog', { name: 'Republish messages' });
  await dialog.getByLabel('Target subject').fill('orders.replayed');
  await dialog.getByRole('button', { name: 'Dry run' }).click();
  await dialog.getByText('1 of 1 message would be republished').waitFor();
  await dialog.getByRole('row').filter({ hasText: 'orders.replayed' }).waitFor();
  await accessible(page, 'republish-dry-run');
  await dialog.getByRole('button', { name: 'Republish 1 message' }).click();
  await dialog.getByText(/Done: 1 published of 1 scanned/).waitFor();
  await screenshot(page, 'republish-done');
  await dialog.getByRole('button', { name: 'Close dialog' }).click();
  await page.getByRole('textbox', { name: 'Subject filter' }).fill('');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('row').filter({ hasText: 'orders.replayed' }).filter({ hasText: 'espresso machine' }).waitFor();
});

await step('search with progress, and tail new messages live', page, async () => {
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByRole('textbox', { name: 'Payload contains' }).fill('espresso');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText(/^2 found in \d+ scanned .* · done$/).waitFor();
  await page.getByRole('button', { name: 'Tail live' }).click();
  await page.getByText('Showing new messages as they arrive').waitFor();
  await page.waitForFunction(() => document.querySelector('.conn')?.textContent?.includes('Live'));
  await gql(page, 'mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: "ORDERS", subject: "orders.tail", payload: "{\\"tailed\\": true}"}) { ack { sequence } } }', { c: clusterId });
  await page.getByRole('row').filter({ hasText: 'orders.tail' }).waitFor();
  await screenshot(page, 'stream-tail');
  await accessible(page, 'stream-tail');
});

await step('pause and resume a consumer', page, async () => {
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/ORDERS/consumers/billing`);
  await page.getByRole('button', { name: 'Pause' }).click();
  const dialog = page.getByRole('dialog', { name: 'Pause billing' });
  await dialog.getByLabel('Pause for').selectOption('4h');
  await dialog.getByRole('button', { name: 'Pause' }).click();
  await page.getByText(/paused until/).waitFor();
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.getByRole('button', { name: 'Pause' }).waitFor();
  if (await page.getByText(/paused until/).count()) throw new Error('still paused');
});

await step('a stream made outside the console names the client that made it in its history', page, async () => {
  // A client of the secured cluster, speaking the NATS protocol itself (no client library here).
  const answer = await natsRequest(env('JSC_SECURED_URL'), env('JSC_SECURED_USER'), env('JSC_SECURED_PASSWORD'),
    '$JS.API.STREAM.CREATE.OUTSIDE', { name: 'OUTSIDE', subjects: ['outside.>'], storage: 'memory' });
  if (answer.error) throw new Error(`the stream was not made: ${JSON.stringify(answer.error)}`);
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/OUTSIDE/history`);
  const created = page.getByRole('listitem').filter({ hasText: 'StreamCreated' }).first();
  await created.locator('.actor').filter({ hasText: 'outside-script' }).filter({ hasText: 'outside the console' }).waitFor({ timeout: TIMEOUT });
  await screenshot(page, 'stream-history-outside');
  await accessible(page, 'stream-history-outside');
  // Deleted outside too: it leaves the list without a reload.
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams`);
  await page.getByRole('link', { name: 'OUTSIDE' }).waitFor();
  const gone = await natsRequest(env('JSC_SECURED_URL'), env('JSC_SECURED_USER'), env('JSC_SECURED_PASSWORD'),
    '$JS.API.STREAM.DELETE.OUTSIDE', {});
  if (!gone.success) throw new Error(`the stream was not deleted: ${JSON.stringify(gone)}`);
  await page.getByRole('link', { name: 'OUTSIDE' }).waitFor({ state: 'detached', timeout: TIMEOUT });
});

await step('edit a stream with a diff preview, then see the diff in its history', page, async () => {
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/ORDERS/config`);
  await page.getByLabel('Description').fill('Orders from every shop');
  await page.getByLabel('Max age').fill('14d');
  await page.getByRole('button', { name: 'Review 2 changes' }).click();
  const dialog = page.getByRole('dialog', { name: 'Review changes' });
  await dialog.getByRole('row').filter({ hasText: 'maxAge' }).filter({ hasText: '7d' }).filter({ hasText: '14d' }).waitFor();
  await screenshot(page, 'stream-config-diff');
  await accessible(page, 'stream-config-diff');
  await dialog.getByRole('button', { name: 'Save 2 changes' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByRole('link', { name: 'History' }).click();
  const updated = page.getByRole('listitem').filter({ hasText: 'StreamUpdated' }).first();
  await updated.getByRole('row').filter({ hasText: 'description' }).filter({ hasText: 'Orders from every shop' }).waitFor();
  await updated.locator('.actor').filter({ hasText: env('JSC_EMAIL') }).waitFor();
  await updated.getByRole('button', { name: 'State after this' }).click();
  await page.getByText('"description": "Orders from every shop"').waitFor();
  await screenshot(page, 'stream-history');
  await accessible(page, 'stream-history');
});

await step('deep links and the back button', page, async () => {
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/ORDERS/consumers/billing/config`);
  await page.getByRole('heading', { name: 'Edit' }).waitFor();
  await page.getByRole('link', { name: 'Dead letters' }).click();
  await page.getByText('No dead letter').waitFor();
  await page.goBack();
  await page.getByRole('heading', { name: 'Edit' }).waitFor();
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams`);
  await page.getByRole('link', { name: 'ORDERS' }).waitFor();
  await screenshot(page, 'streams');
  await accessible(page, 'streams');
});

let inviteLink;
await step('invite an admin', page, async () => {
  await page.getByRole('link', { name: 'People' }).click();
  await page.getByRole('heading', { name: 'People', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Invite' }).click();
  const dialog = page.getByRole('dialog', { name: 'Invite someone' });
  await dialog.getByLabel('Email').fill('ops@example.com');
  await dialog.getByLabel('Role').selectOption('ADMIN');
  await dialog.getByRole('button', { name: 'Invite' }).click();
  inviteLink = (await dialog.locator('pre.secret').textContent()).trim();
  if (!inviteLink.startsWith(`${URL}/invitation?token=`)) throw new Error(`odd link ${inviteLink}`);
  await dialog.getByRole('button', { name: 'Close dialog' }).click();
  await page.getByRole('cell', { name: env('JSC_EMAIL') }).waitFor();
  await screenshot(page, 'people');
  await accessible(page, 'people');
  await page.getByRole('link', { name: 'Invitations' }).click();
  await page.getByRole('row').filter({ hasText: 'ops@example.com' }).filter({ hasText: 'pending' }).waitFor();
  await accessible(page, 'people-invitations');
});

const other = await newPage('invitee');
await step('the invitee accepts, signs in and reads the audit trail', other, async () => {
  await other.goto(inviteLink);
  await other.getByRole('heading', { name: 'Accept your invitation' }).waitFor();
  await accessible(other, 'accept-invitation');
  await other.getByLabel('Your name').fill('Ops Person');
  await other.getByLabel('Password').fill('a-long-enough-password-42');
  await other.getByRole('button', { name: 'Accept and create my account' }).click();
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.getByLabel('Email').fill('ops@example.com');
  await other.getByLabel('Password').fill('a-long-enough-password-42');
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.getByRole('heading', { name: 'Clusters', level: 1 }).waitFor();
  await other.getByRole('link', { name: 'Audit' }).click();
  await other.getByRole('cell', { name: 'StreamUpdated' }).or(other.getByText('StreamUpdated')).first().waitFor();
});

await step('change a role and see a page refuse', page, async () => {
  await page.getByRole('link', { name: 'Members' }).click();
  await page.getByLabel('Role of ops@example.com').selectOption('VIEWER');
  await page.waitForFunction(() => document.querySelector('select[aria-label="Role of ops@example.com"]')?.value === 'VIEWER');
  await other.reload();
  await other.getByRole('alert').filter({ hasText: 'FORBIDDEN' }).waitFor();
  await screenshot(other, 'audit-refused');
  // A viewer is not offered what it may not do.
  await other.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams`);
  await other.getByRole('link', { name: 'ORDERS' }).waitFor();
  if (await other.getByRole('button', { name: 'Create stream' }).count()) throw new Error('a viewer is offered Create stream');
});

await step('a team raises a viewer to operator on one cluster', page, async () => {
  await page.getByRole('link', { name: 'Teams' }).click();
  await page.getByLabel('New team').fill('payments');
  await page.getByRole('button', { name: 'Create team' }).click();
  const row = page.getByRole('row').filter({ hasText: 'payments' });
  await row.getByLabel('Add a member to payments').selectOption({ label: 'ops@example.com' });
  await row.getByText('ops@example.com').waitFor();
  await row.getByLabel('Cluster to grant payments a role on').selectOption({ label: 'secured' });
  await row.getByLabel('Role for payments').selectOption('OPERATOR');
  await row.getByRole('button', { name: 'Grant' }).click();
  await row.getByText('secured: operator').waitFor();
  await screenshot(page, 'people-teams');
  await accessible(page, 'people-teams');
  // The viewer is offered on that cluster what the grant allows, and the API agrees.
  await other.reload();
  await other.getByRole('button', { name: 'Create stream' }).waitFor();
});

await step('the audit trail is live and an export downloads', page, async () => {
  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByRole('heading', { name: 'Audit', level: 1 }).waitFor();
  await page.getByRole('row').filter({ hasText: 'OrganizationMemberSet' }).first().waitFor();
  // A change made now appears without a reload.
  await gql(page, 'mutation($c: ID!) { updateCluster(input: {id: $c, description: "changed while watching"}) { cluster { id } } }', { c: clusterId });
  await page.getByRole('row').filter({ hasText: 'ClusterUpdated' }).first().waitFor();
  await screenshot(page, 'audit');
  await accessible(page, 'audit');
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Export' }).click();
  const file = await download;
  const text = readFileSync(await file.path(), 'utf8');
  const lines = text.trim().split('\n');
  if (lines.length < 5 || !lines[0].includes('event_type')) throw new Error(`odd export: ${lines.slice(0, 2).join(' | ')}`);
  if (!text.includes('StreamUpdated')) throw new Error('the export lacks the stream update');
  console.log(`     export: ${file.suggestedFilename()}, ${lines.length - 1} rows`);
});

await step('an API key is shown once', page, async () => {
  await page.getByRole('link', { name: 'People' }).click();
  await page.getByRole('button', { name: 'New API key' }).click();
  const dialog = page.getByRole('dialog', { name: 'New API key' });
  await dialog.getByLabel('Name').fill('grafana');
  await dialog.getByLabel('Role').selectOption('VIEWER');
  await dialog.getByRole('button', { name: 'Create key' }).click();
  const key = (await dialog.getByTestId('api-key').textContent()).trim();
  if (!key.startsWith('jsck_')) throw new Error(`odd key ${key}`);
  await dialog.getByRole('button', { name: 'Close dialog' }).click();
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByRole('row').filter({ hasText: 'grafana' }).waitFor();
  if ((await page.content()).includes(key)) throw new Error('the key is shown again');
  // The key works, as a bearer credential, for what a viewer may do.
  const res = await fetch(`${URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: '{ clusters { totalCount } }' }),
  });
  const body = await res.json();
  if (!(body.data?.clusters?.totalCount >= 1)) throw new Error(JSON.stringify(body));
  await accessible(page, 'people-api-keys');
});

await step('the account page and the dark theme', page, async () => {
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('heading', { name: 'Sessions' }).waitFor();
  await page.getByText('this one').waitFor();
  await accessible(page, 'account');
  await page.getByRole('button', { name: 'Switch to dark theme' }).click();
  await page.getByRole('button', { name: 'Switch to light theme' }).waitFor();
  await screenshot(page, 'account-dark');
  await accessible(page, 'account-dark');
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/ORDERS`);
  await page.getByRole('heading', { name: 'ORDERS', level: 1 }).waitFor();
  await screenshot(page, 'stream-overview-dark');
  await accessible(page, 'stream-overview-dark');
  await page.getByRole('button', { name: 'Switch to light theme' }).click();
});

await step('delete a stream only after typing its name', page, async () => {
  await page.goto(`${URL}/clusters/${encodeURIComponent(clusterId)}/streams/ORDERS/config`);
  await page.getByRole('button', { name: 'Delete stream' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete ORDERS' });
  const button = dialog.getByRole('button', { name: 'Delete' });
  if (await button.isEnabled()) throw new Error('delete is enabled before the name is typed');
  await dialog.getByLabel('stream name').fill('ORDER');
  if (await button.isEnabled()) throw new Error('delete is enabled for a wrong name');
  await dialog.getByLabel('stream name').fill('ORDERS');
  await accessible(page, 'delete-stream');
  await button.click();
  await page.getByText('No stream matches.').waitFor();
  if (!page.url().endsWith('/streams')) throw new Error(`after delete: ${page.url()}`);
});

await step('a session that ends sends the page back to sign-in', page, async () => {
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('jsconsole.session'));
    s.accessToken = 'not-a-token';
    s.accessTokenExpiresAt = new Date(Date.now() + 3600_000).toISOString();
    localStorage.setItem('jsconsole.session', JSON.stringify(s));
  });
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in to JetStream Console' }).waitFor();
  await page.getByLabel('Email').fill(env('JSC_EMAIL'));
  await page.getByLabel('Password').fill(env('JSC_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Back on the page it was on.
  await page.getByRole('heading', { name: 'secured', level: 1 }).waitFor();
  if (!page.url().endsWith('/streams')) throw new Error(`after sign-in: ${page.url()}`);
});

await step('keyboard: skip link and tab order reach the page', page, async () => {
  await page.goto(`${URL}/clusters`);
  await page.getByRole('heading', { name: 'Clusters', level: 1 }).waitFor();
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.textContent);
  if (first !== 'Skip to content') throw new Error(`first tab stop is ${first}`);
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  const next = await page.evaluate(() => document.activeElement?.closest('main') !== null);
  if (!next) throw new Error('the skip link does not lead into the page');
});

await step('an unknown page says so', page, async () => {
  await page.goto(`${URL}/no/such/page`);
  await page.getByRole('heading', { name: 'Not found' }).waitFor();
});

await step('no console error and no CSP violation on any page', null, async () => {
  if (problems.length) throw new Error(problems.join('\n'));
});

receiver.close();
console.log(`a11y ${JSON.stringify(a11y)}`);
console.log(`screenshots ${shot} in ${ART}`);
await browser.close();
