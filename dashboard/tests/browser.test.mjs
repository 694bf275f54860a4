// The live dashboard in a real browser (Debian Chromium driven by playwright-core), against
// `pipeline` on the real Kafka broker:
//   - the page loads with no console error and no request that leaves 127.0.0.1;
//   - the numbers it shows equal the interactive-query answers of the apps;
//   - a new event produced to Kafka appears on the open page (pushed over server-sent events);
//   - the standalone `dashboard` binary, pointed at the same apps, serves the same numbers;
//   - a screenshot is written to $ARTIFACTS_DIR/dashboard.png.
// Needs KAFKA_BOOTSTRAP and STREAMLIB_BIN_DIR (the built binaries); scripts/dashboard test sets
// them up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const bootstrap = process.env.KAFKA_BOOTSTRAP;
const binDir = process.env.STREAMLIB_BIN_DIR;
const artifacts = process.env.ARTIFACTS_DIR || join(process.cwd(), 'artifacts');
assert.ok(bootstrap, 'KAFKA_BOOTSTRAP must name the broker');
assert.ok(binDir, 'STREAMLIB_BIN_DIR must name the folder of the built binaries');

const prefix = `dash${process.pid}-${Date.now()}.`;
const work = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
const children = [];
let browser;
let page;
let urls;
const pageErrors = [];
const foreignRequests = [];

/** Starts a binary; resolves with the values of the stdout lines `label: value` asked for. */
function start(binary, args, labels) {
  const child = spawn(join(binDir, binary), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  child.stderr.on('data', (chunk) => { log = (log + chunk).slice(-20000); });
  return new Promise((resolve, reject) => {
    const found = {};
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      for (const [key, pattern] of Object.entries(labels)) {
        const match = line.match(pattern);
        if (match) found[key] = match[1];
      }
      if (Object.keys(found).length === Object.keys(labels).length) resolve(found);
    });
    child.on('exit', (code) => reject(new Error(`${binary} exited with ${code} before it was ready:\n${log}`)));
  });
}

/** Polls `check` (async, returns a value or throws) until it succeeds or `ms` pass. */
async function eventually(what, check, ms = 120000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not happen within ${ms / 1000} s; last: ${last && last.stack}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** The apps' answers, through their interactive queries, as the page should show them. */
async function queryAnswers() {
  const latest = await getJson(`${urls.metrics}state/keyvalues/metrics-latest/all`);
  const alerts = await getJson(`${urls.alerts}state/keyvalues/alerts-recent/all`);
  const coins = {};
  for (const { value } of latest.entries) {
    const coin = (coins[value.coin_id] ??= { returns: {}, volatility: {} });
    coins[value.coin_id].returns[value.horizon] = value.simple_return;
    coins[value.coin_id].volatility[value.horizon] = value.realized_vol_annualized;
    coin.series = `${value.coin_id}|${value.vs_currency}`;
  }
  for (const coin of Object.values(coins)) {
    const since = encodeURIComponent(`${coin.series}@0`);
    const until = encodeURIComponent(`${coin.series}@9223372036854775807`);
    const history = await getJson(`${urls.metrics}state/keyvalues/metrics-history/range/${since}/${until}`);
    const last = history.entries.at(-1);
    coin.price = last ? last.value.price : null;
  }
  const alertIds = alerts.entries
    .map(({ value }) => value)
    .sort((a, b) => (b.ts_event === a.ts_event ? (b.alert_id < a.alert_id ? -1 : 1) : (b.ts_event < a.ts_event ? -1 : 1)))
    .slice(0, 50)
    .map((a) => a.alert_id);
  return { coins, alertIds };
}

/** What the page shows, read from its `data-value` hooks. */
async function shown() {
  return page.evaluate(() => {
    const value = (el) => (el && el.dataset.value !== '' ? Number(el.dataset.value) : null);
    const coins = {};
    for (const el of document.querySelectorAll('[data-testid="price"]')) {
      const coin = el.dataset.coin;
      const one = (testid, horizon) =>
        value(document.querySelector(`[data-testid="${testid}"][data-coin="${coin}"][data-horizon="${horizon}"]`));
      coins[coin] = {
        price: value(el),
        returns: { '1h': one('return', '1h'), '24h': one('return', '24h'), '7d': one('return', '7d') },
        volatility: { '24h': one('volatility', '24h'), '7d': one('volatility', '7d') },
      };
    }
    const alertIds = [...document.querySelectorAll('[data-testid="alert"]')].map((el) => el.dataset.alertId);
    const correlationCells = document.querySelectorAll('[data-testid="corr"]').length;
    const health = {};
    for (const el of document.querySelectorAll('[data-testid="health"]')) health[el.dataset.name] = value(el);
    return { coins, alertIds, correlationCells, health, seq: Number(document.body.dataset.seq) };
  });
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  // One day of five-minute polls, produced as fast as they go, then no more (no live ticks),
  // so the platform's state holds still once it has processed them.
  urls = await start('pipeline', [
    '--bootstrap-servers', bootstrap, '--topic-prefix', prefix, '--state-dir', join(work, 'state'),
    '--no-view', '--no-lake', '--dashboard-addr', '127.0.0.1:0', '--partitions', '3',
    '--mode', 'synthetic', '--history-ticks', '288', '--max-batches', '288', '--speedup', '0',
  ], {
    dashboard: /^dashboard: (http:\/\/\S+)$/,
    metrics: /^interactive queries of metrics: (http:\/\/\S+)$/,
    alerts: /^interactive queries of alerts: (http:\/\/\S+)$/,
  });
  for (const key of ['metrics', 'alerts']) if (!urls[key].endsWith('/')) urls[key] += '/';
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    foreignRequests.push(url.href);
    return route.abort();
  });
  await page.goto(urls.dashboard);
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
  rmSync(work, { recursive: true, force: true });
});

test('the page shows the interactive-query answers of the apps', async () => {
  const seen = await eventually('the page showing every coin with the apps\' answers', async () => {
    const answers = await queryAnswers();
    const page = await shown();
    assert.equal(Object.keys(answers.coins).length, 10, 'ten coins answered by the metrics app');
    assert.deepEqual(Object.keys(page.coins).sort(), Object.keys(answers.coins).sort());
    for (const [coin, answer] of Object.entries(answers.coins)) {
      const on = page.coins[coin];
      assert.equal(on.price, answer.price, `${coin} price`);
      for (const h of ['1h', '24h', '7d']) assert.equal(on.returns[h], answer.returns[h] ?? null, `${coin} ${h} return`);
      for (const h of ['24h', '7d']) assert.equal(on.volatility[h], answer.volatility[h] ?? null, `${coin} ${h} volatility`);
    }
    assert.deepEqual(page.alertIds, answers.alertIds, 'the alert feed');
    assert.equal(page.correlationCells, 100, 'a 10 × 10 correlation matrix');
    for (const name of ['dead_letters', 'duplicates', 'alerts_raised', 'events_processed', 'consumer_lag', 'commit_latency_ms']) {
      assert.equal(typeof page.health[name], 'number', `health tile ${name} shows a number`);
    }
    assert.equal(page.health.events_processed, 288 * 10, 'every event of the day was validated');
    return page;
  });
  assert.ok(seen.coins.bitcoin.returns['24h'] !== null, 'a day of polls gives a 24 h return');
});

test('a new event appears on the open page, pushed over server-sent events', async () => {
  const before = await shown();
  // A tick up from the latest price: a new point, not a crash the alert rules would flag.
  const price = Math.round(before.coins.bitcoin.price * 1.001 * 100) / 100;
  const at = new Date();
  const item = {
    id: 'bitcoin', symbol: 'btc', name: 'Bitcoin', image: 'https://example.invalid/x.png',
    current_price: price, market_cap: 1.2e12, market_cap_rank: 1, fully_diluted_valuation: null,
    total_volume: 3.0e10, high_24h: null, low_24h: null, price_change_24h: null,
    price_change_percentage_24h: null, market_cap_change_24h: null,
    market_cap_change_percentage_24h: null, circulating_supply: 1.9e7, total_supply: null,
    max_supply: null, ath: null, ath_change_percentage: null, ath_date: null, atl: null,
    atl_change_percentage: null, atl_date: null, roi: null, last_updated: at.toISOString(),
  };
  const file = join(work, 'one.jsonl');
  writeFileSync(file, `${JSON.stringify([item])}\n`);
  const producer = spawn(join(binDir, 'producer'), [
    '--bootstrap-servers', bootstrap, '--topic', `${prefix}crypto.prices.raw`,
    '--coins-topic', `${prefix}crypto.coins`,
    '--mode', 'replay', '--file', file, '--speedup', '0', '--coins', 'bitcoin',
  ], { stdio: 'inherit' });
  const code = await new Promise((r) => producer.on('exit', r));
  assert.equal(code, 0, 'the producer produced the event');
  await page.waitForFunction(
    (expected) => document.querySelector('[data-testid="price"][data-coin="bitcoin"]')?.dataset.value === expected,
    String(price),
    { timeout: 60000, polling: 200 },
  );
  const after = await shown();
  assert.ok(after.seq > before.seq, 'the page applied newer snapshots without a reload');
  const age = await page.getAttribute('[data-testid="age"][data-coin="bitcoin"]', 'data-value');
  assert.ok(Number(age) < 10 * 60_000, `the new price is fresh (age ${age} ms)`);
  assert.equal(
    await page.getAttribute('[data-testid="freshness"][data-coin="bitcoin"]', 'data-state'),
    'ok',
  );
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
});

test('the standalone dashboard binary serves the same numbers from the same apps', async () => {
  const standalone = await start('dashboard', [
    '--listen', '127.0.0.1:0', '--metrics-queries', urls.metrics, '--alerts-queries', urls.alerts,
  ], { url: /^dashboard: (http:\/\/\S+)$/ });
  await eventually('the standalone dashboard agreeing with the pipeline\'s', async () => {
    const mine = await getJson(`${standalone.url}api/snapshot`);
    const theirs = await getJson(`${urls.dashboard}api/snapshot`);
    assert.equal(mine.coins.length, 10);
    const prices = (s) => Object.fromEntries(s.coins.map((c) => [c.coin_id, [c.price, c.returns, c.volatility]]));
    assert.deepEqual(prices(mine), prices(theirs));
    assert.deepEqual(mine.alerts.map((a) => a.alert_id), theirs.alerts.map((a) => a.alert_id));
  });
  const html = await (await fetch(standalone.url)).text();
  assert.match(html, /<script src="\/vendor\/lightweight-charts.js"/);
});

test('no console error and no request left 127.0.0.1', () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(foreignRequests, []);
});
