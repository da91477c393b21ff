// Drives the Airflow UI and the dashboard in headless Chromium (Debian's /usr/bin/chromium through
// npm playwright-core: no browser download), the way a person uses them.
//
//   node ui.js <step> '<json args>'      → prints one line of JSON with what it saw
//
// Steps (called one at a time by python/tests/e2e/test_ui.py, which waits for runs in between):
//   login-trigger  log in through the login page, unpause the DAG with its toggle, open the
//                  trigger form, set the params, trigger; keeps the session in args.state
//   grid           the DAG's grid view (after the runs)
//   dashboard      the dashboard page, directly and inside the Airflow navigation; what every
//                  chart plots; then, logged out, that the page and its data are refused
//   static         a static export opened from disk with the network cut off
'use strict';
const path = require('path');
const { chromium } = require(require.resolve('playwright-core', { paths: [process.env.SPOTIFY_NODE_MODULES || path.resolve(__dirname, '../../../../node_modules')] }));

const CHROMIUM = process.env.SPOTIFY_CHROMIUM || '/usr/bin/chromium';
const VIEWPORT = { width: 1440, height: 960 };

let lastPage = null; // the page to screenshot when a step fails

async function browser() {
  const b = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const newContext = b.newContext.bind(b);
  b.newContext = async opts => {
    const ctx = await newContext(opts);
    ctx.on('page', p => { lastPage = p; });
    return ctx;
  };
  return b;
}

function shot(a, name) {
  return path.join(a.out_dir, name);
}

async function login(page, a) {
  await page.goto(a.base_url + '/');
  await page.waitForURL(/\/auth\/login/, { timeout: 30000 });
  const user = page.locator('input[name=username]');
  await user.waitFor();
  await user.fill(a.username);
  await page.locator('input[name=password]').fill(a.password);
  await page.screenshot({ path: shot(a, '01-login.png') });
  await page.locator('button[type=submit]').click();
  await page.waitForURL(u => !new URL(u).pathname.startsWith('/auth/'), { timeout: 30000 });
}

// Fills a field of the trigger form's "Run Parameters": text inputs are named element_<param>,
// number inputs are found through their increment button's aria-controls.
async function fillParam(dialog, name, value) {
  let input = dialog.locator(`input[name="element_${name}"]`);
  if (!(await input.count())) {
    const id = await dialog.locator(`[id="number-input:element_${name}:inc"]`).getAttribute('aria-controls', { timeout: 10000 });
    input = dialog.locator(`[id="${id}"]`);
  }
  await input.fill(String(value));
  await input.blur();
  const now = await input.inputValue();
  if (now.replace(/,/g, '') !== String(value)) throw new Error(`param ${name}: typed ${value}, the form shows ${now}`);
}

async function loginTrigger(a, b) {
  const ctx = await b.newContext({ viewport: VIEWPORT });
  const page = await ctx.newPage();
  await login(page, a);
  await page.goto(`${a.base_url}/dags/${a.dag_id}`);
  const toggle = page.getByTestId('toggle-pause');
  await toggle.waitFor({ timeout: 60000 });
  const before = await toggle.getAttribute('data-state');
  if (before !== 'checked') {
    await toggle.click();
    await page.waitForFunction(() => document.querySelector('[data-testid=toggle-pause]').dataset.state === 'checked', null, { timeout: 30000 });
  }
  await page.getByTestId('trigger-dag-button').click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.locator('[id="number-input:element_events:inc"], input[name="element_events"]').first().waitFor({ timeout: 30000 });
  for (const [name, value] of Object.entries(a.params)) await fillParam(dialog, name, value);
  // The form as filled in: its first fields (event count, seed, ...) in view.
  await dialog.getByText('Run Parameters').first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot(a, '02-trigger-form.png') });
  const submit = page.getByTestId('trigger-dag-submit');
  await submit.scrollIntoViewIfNeeded();
  if (await submit.isDisabled()) {
    const invalid = await dialog.evaluate(d => Array.from(d.querySelectorAll('[aria-invalid=true], [data-invalid]')).map(e => e.id || e.name));
    throw new Error('the trigger button is disabled; invalid fields: ' + JSON.stringify(invalid));
  }
  const posted = page.waitForResponse(r => r.url().includes(`/dags/${a.dag_id}/dagRuns`) && r.request().method() === 'POST', { timeout: 30000 });
  await submit.click();
  const resp = await posted;
  const body = await resp.json().catch(() => ({}));
  if (resp.status() >= 300) throw new Error(`trigger: HTTP ${resp.status()} ${JSON.stringify(body)}`);
  await ctx.storageState({ path: a.state });
  return { paused_before: before !== 'checked', status: resp.status(), dag_run_id: body.dag_run_id, conf: body.conf };
}

async function grid(a, b) {
  const ctx = await b.newContext({ viewport: VIEWPORT, storageState: a.state });
  const page = await ctx.newPage();
  await page.goto(`${a.base_url}/dags/${a.dag_id}`);
  await page.getByTestId('toggle-pause').waitFor({ timeout: 60000 });
  // Wait until the grid shows the task rows and the runs' bars.
  await page.getByText(a.expect_task, { exact: true }).first().waitFor({ timeout: 60000 });
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: shot(a, a.name || '03-dag-grid.png') });
  return { url: page.url() };
}

async function chartsState(frame) {
  await frame.waitForFunction(() => window.spotifyDashboard && window.spotifyDashboard.ready, null, { timeout: 60000 });
  return frame.evaluate(() => {
    const s = window.spotifyDashboard;
    const canvases = {};
    document.querySelectorAll('canvas[id^=chart-]').forEach(c => {
      canvases[c.id.slice(6)] = { points: Number(c.dataset.points || 0), width: c.width, height: c.height };
    });
    return { source: s.source, asOf: s.asOf, error: s.error || null, charts: s.charts, canvases, title: document.title };
  });
}

async function dashboard(a, b) {
  const ctx = await b.newContext({ viewport: VIEWPORT, storageState: a.state });
  const page = await ctx.newPage();
  const external = [];
  page.on('request', r => { if (/^(https?|wss?):/.test(r.url()) && !r.url().startsWith(a.base_url)) external.push(r.url()); });
  await page.goto(`${a.base_url}/spotify-dashboard/`);
  const direct = await chartsState(page);
  await page.screenshot({ path: shot(a, '04-dashboard.png'), fullPage: true });

  // The same page inside the Airflow UI, from the navigation entry.
  await page.goto(`${a.base_url}/dags`);
  const nav = page.getByRole('link', { name: /Spotify dashboard/i }).or(page.getByRole('button', { name: /Spotify dashboard/i })).first();
  await nav.waitFor({ timeout: 30000 });
  await nav.click();
  await page.waitForURL(/\/plugin\/spotify-dashboard/, { timeout: 30000 });
  const iframe = page.locator('iframe').first();
  await iframe.waitFor({ timeout: 30000 });
  const iframeSrc = await iframe.getAttribute('src');
  const frame = await (await iframe.elementHandle()).contentFrame();
  const embedded = await chartsState(frame);
  await page.screenshot({ path: shot(a, '05-dashboard-in-airflow.png') });

  // Logged out: the page sends the browser to the login page; the data endpoint says 401.
  const anon = await b.newContext({ viewport: VIEWPORT });
  const p2 = await anon.newPage();
  const r = await p2.goto(`${a.base_url}/spotify-dashboard/`);
  await p2.waitForLoadState('networkidle');
  const anonPage = { url: p2.url(), status: r.status(), has_dashboard: await p2.evaluate(() => !!window.spotifyDashboard) };
  const d = await p2.request.get(`${a.base_url}/spotify-dashboard/data.json`);
  const lib = await p2.request.get(`${a.base_url}/spotify-dashboard/static/chart.umd.min.js`);
  return { direct, embedded, nav_url: page.url(), iframe_src: iframeSrc, iframe_url: frame.url(), external_requests: external, anonymous: { page: anonPage, data_status: d.status(), data_body: (await d.text()).slice(0, 200), chart_js_status: lib.status() } };
}

async function staticExport(a, b) {
  const ctx = await b.newContext({ viewport: VIEWPORT, offline: true });
  const requests = [];
  await ctx.route('**/*', route => {
    const url = route.request().url();
    if (url.startsWith('file://')) return route.continue();
    requests.push(url);
    return route.abort();
  });
  const page = await ctx.newPage();
  await page.goto('file://' + a.file);
  const state = await chartsState(page);
  await page.screenshot({ path: shot(a, a.name || '06-dashboard-static-export.png'), fullPage: true });
  return { state, blocked_requests: requests };
}

const STEPS = { 'login-trigger': loginTrigger, grid, dashboard, static: staticExport };

(async () => {
  const [step, json] = process.argv.slice(2);
  if (!STEPS[step]) throw new Error(`unknown step ${step}; one of ${Object.keys(STEPS).join(', ')}`);
  const args = JSON.parse(json || '{}');
  const b = await browser();
  let result;
  try {
    result = await STEPS[step](args, b);
  } catch (e) {
    if (lastPage && !lastPage.isClosed() && args.out_dir) {
      await lastPage.screenshot({ path: path.join(args.out_dir, `failure-${step}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await b.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})().catch(e => {
  process.stderr.write((e && e.stack) || String(e));
  process.stderr.write('\n');
  process.exit(1);
});
