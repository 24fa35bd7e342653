// Browser end-to-end test of the web UI: a demo node, headless chromium (the system's, no
// download), the player page and the operator console as a person would use them.
//
//   node tests/e2e/player.spec.mjs <croupier binary>
//
// Starts `croupier serve --demo --listen 127.0.0.1:0 --data-dir <tmp>`, logs in as alice, opens
// a table, places a bet, waits for the live push to settle the round, checks the balance and
// the result, verifies a round in the browser, and saves screenshots to target/e2e/.
// The console opens with the demo's admin key (DATA_DIR/demo-admin.key).
// E2E_BASE_URL=http://127.0.0.1:PORT uses a node already running instead; E2E_USER,
// E2E_PASSWORD and E2E_OPERATOR_KEY override the demo's credentials (without a key the node
// must be in protected mode); E2E_ALLOW_POLLING=1 accepts a node without the live WebSocket.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const shots = resolve(here, '../../target/e2e');
const user = process.env.E2E_USER || 'alice';
const password = process.env.E2E_PASSWORD || 'demo';
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const step = (text) => console.log(`  - ${text}`);

async function startNode(binary) {
  const dir = mkdtempSync(join(tmpdir(), 'croupier-e2e-'));
  const logPath = join(dir, 'serve.log');
  const log = openSync(logPath, 'w');
  const node = spawn(binary, ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
    { stdio: ['ignore', log, log] });
  // The node writes on its way out (the AML pipeline saves its cursor): its directory goes
  // only once it has exited, or removing it races those writes (ENOTEMPTY, seen in CI).
  const cleanup = async () => {
    if (node.exitCode === null && node.signalCode === null) {
      const exited = new Promise((resolve) => node.once('exit', resolve));
      node.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10000))]);
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  // The port, from the start-up line, as scripts/serve-port.sh reads it.
  for (let i = 0; i < 300; i++) {
    const text = readFileSync(logPath, 'utf8');
    const match = /addr=127\.0\.0\.1:(\d+)/.exec(text);
    if (match) {
      // The demo saves its admin key (for the console) beside its data.
      const keyFile = join(dir, 'data', 'demo-admin.key');
      let key = null;
      for (let j = 0; j < 50 && key === null; j++) {
        try {
          key = readFileSync(keyFile, 'utf8').trim();
        } catch (error) {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      return { base: `http://127.0.0.1:${match[1]}`, cleanup, logPath, key };
    }
    if (node.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = readFileSync(logPath, 'utf8');
  await cleanup();
  throw new Error(`croupier serve --demo did not start:\n${text}`);
}

/** Fails the test on any script error, CSP violation or console error in the page. */
function watch(page, problems, expected = null) {
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' && !/WebSocket connection/.test(text) && !(expected && expected.test(text))) {
      problems.push(`console error: ${text}`);
    }
  });
}

async function main() {
  const binary = process.argv[2];
  let node = null;
  let base = process.env.E2E_BASE_URL;
  if (!base) {
    if (!binary) throw new Error('usage: player.spec.mjs <croupier binary> (or E2E_BASE_URL)');
    node = await startNode(resolve(binary));
    base = node.base;
  }
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in a container has no user namespace for chromium's sandbox.
    args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    watch(page, problems);

    step(`player page at ${base}/`);
    const response = await page.goto(`${base}/`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /default-src 'none'/);

    step(`log in as ${user}, by keyboard only`);
    await page.locator('#login-username:focus').waitFor();
    await page.keyboard.type(user);
    await page.keyboard.press('Tab');
    await page.keyboard.type(password);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Log in');
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none',
      'focus is visible');
    await page.keyboard.press('Enter');
    await page.locator('#table-list a').first().waitFor();
    assert.ok(await page.evaluate(() => sessionStorage.getItem('croupier.player')), 'token kept in sessionStorage');

    // A roulette table exercises the cloth; any table will do otherwise.
    const links = page.locator('#table-list a');
    const roulette = links.filter({ hasText: 'roulette' });
    const table = (await roulette.count()) ? roulette.first() : links.first();
    const tableName = (await table.textContent()).trim();
    // The page bets over the table's bet socket once it is open (HTTP otherwise).
    const betFrames = { sent: [], received: [] };
    page.on('websocket', (socket) => {
      if (!socket.url().includes('/bet-socket')) return;
      socket.on('framesent', (frame) => betFrames.sent.push(String(frame.payload)));
      socket.on('framereceived', (frame) => betFrames.received.push(String(frame.payload)));
    });
    step(`open ${tableName}`);
    await table.click();
    await page.locator('#table-view').waitFor();
    await page.locator('#layout .spot').first().waitFor();

    step('wait for an open round with time to bet');
    await page.waitForFunction(() => {
      const text = document.getElementById('countdown').textContent;
      const match = /closes in ([\d.]+) s/.exec(text);
      return match && Number(match[1]) > 2.5 && !document.getElementById('place').disabled;
    }, null, { timeout: 60_000, polling: 100 });
    const balanceBefore = await page.locator('#balance').textContent();

    step('choose the smallest chip, stack it on two spots, place the bet');
    await page.locator('.chip label').first().click();
    const isRoulette = tableName.includes('roulette');
    const spots = isRoulette ? ['red', 'straight:17'] : [await page.locator('#layout .spot').first().getAttribute('data-spot')];
    for (const spot of spots) await page.locator(`#layout .spot[data-spot="${spot}"]`).click();
    await page.locator(`#layout .spot[data-spot="${spots[0]}"]`).click();
    assert.notEqual(await page.locator('#stake').textContent(), '0.00');
    await page.getByRole('button', { name: 'Place bet' }).click();
    await page.waitForFunction(() => /placed on round/.test(document.getElementById('bet-message').textContent),
      null, { timeout: 10_000 });
    const balanceAfterBet = await page.locator('#balance').textContent();
    assert.notEqual(balanceAfterBet, balanceBefore, 'the stake left the balance');
    if (!process.env.E2E_ALLOW_POLLING) {
      assert.equal(betFrames.sent.length, 1, 'the bet went over the bet socket');
      const sent = JSON.parse(betFrames.sent[0]);
      const answer = betFrames.received.map((text) => JSON.parse(text)).find((a) => a.bet_id === sent.bet_id);
      assert.equal(answer && answer.type, 'bet_accepted', 'the bet socket answered the bet');
    }

    step('wait for the round to be drawn and settled (live push)');
    await page.locator('#results li').first().waitFor({ timeout: 60_000 });
    const result = await page.locator('#results li').first().textContent();
    assert.match(result, /^Round #\d+: staked [\d,.]+ EUR, (won|no win|round voided)/);
    const balanceText = /Balance ([\d,.]+ EUR)/.exec(result)[1];
    assert.equal(await page.locator('#balance').textContent(), balanceText, 'header balance is the settled one');
    assert.match(await page.locator('#outcome').textContent(), /^Result: /);
    const live = await page.locator('#live-state').textContent();
    step(`followed by: ${live}`);
    if (!process.env.E2E_ALLOW_POLLING) assert.equal(live, 'Live', 'the page follows the table over the WebSocket');
    await page.screenshot({ path: join(shots, 'player-1280.png'), fullPage: true });

    step('verify a round in the browser');
    const row = page.locator('#rounds tr').filter({ has: page.locator('button.verify:enabled') }).first();
    await row.locator('button.verify').click();
    await row.locator('.proof.ok').waitFor({ timeout: 10_000 });
    assert.match(await row.locator('.proof').textContent(), /verified/);

    step('every drawn round of every table verifies with the page\'s own verifier');
    const verdicts = await page.evaluate(async () => {
      const { verifyRound, verifyStudioRound } = await import('/ui/fair.js');
      const headers = { Authorization: `Bearer ${sessionStorage.getItem('croupier.player')}` };
      const tables = await (await fetch('/v1/tables', { headers })).json();
      const out = [];
      for (const table of tables) {
        const { rounds } = await (await fetch(`/v1/tables/${table.id}/rounds?limit=10`, { headers })).json();
        for (const round of rounds.filter((r) => r.server_seed || r.studio_signature)) {
          // A live-studio round is proven by the studio's Ed25519 signature (Web Crypto).
          const studio = round.source === 'studio';
          const verdict = studio ? await verifyStudioRound(table, round) : await verifyRound(table, round);
          const game = studio ? `${table.game} (studio)` : table.game;
          out.push({ game, round: round.round_id, ok: verdict.ok, reason: verdict.reason });
        }
      }
      return out;
    });
    assert.deepEqual(verdicts.filter((v) => !v.ok), [], 'every round verifies');
    const games = new Set(verdicts.map((v) => v.game));
    if (!process.env.E2E_BASE_URL) {
      assert.ok(games.has('roulette (studio)'), 'the demo studio reported a result that verifies');
    }
    step(`${verdicts.length} rounds verified (${[...games].join(', ')})`);

    step('375 px wide: no sideways scrolling, layout still usable');
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, `page is ${overflow}px wide at 375`);
    const box = await page.locator(`#layout .spot[data-spot="${spots[0]}"]`).boundingBox();
    assert.ok(box && box.width >= 24 && box.height >= 24, 'spots stay large enough to press');
    await page.screenshot({ path: join(shots, 'player-375.png'), fullPage: true });

    step('operator console');
    const consolePage = await context.newPage();
    // The console first asks whether the node lets it read without a key (protected mode);
    // the demo has a key, so that probe's 401 is expected.
    watch(consolePage, problems, /status of 401/);
    await consolePage.setViewportSize({ width: 1280, height: 900 });
    await consolePage.goto(`${base}/console`);
    const operatorKey = process.env.E2E_OPERATOR_KEY || (node && node.key);
    if (operatorKey) {
      await consolePage.getByLabel(/Key/).fill(operatorKey);
      await consolePage.getByRole('button', { name: 'Open console' }).click();
    }
    await consolePage.locator('#tables tr').first().waitFor({ timeout: 10_000 });
    await consolePage.waitForFunction(() => /^[0-9a-f]{64}$/.test(document.getElementById('audit-head').textContent),
      null, { timeout: 10_000 });
    await consolePage.waitForFunction(() => document.querySelectorAll('#ggr tr td.num').length > 0,
      null, { timeout: 20_000 });
    await consolePage.waitForFunction(() => document.querySelectorAll('#house tr td.num').length > 0,
      null, { timeout: 10_000 });
    if (node) {
      // The demo's bots bet every round.
      await consolePage.waitForFunction(() => Number(document.getElementById('bets-rate').textContent) > 0,
        null, { timeout: 30_000 });
    }
    step('a case opened on alice shows in the console and a decision clears it');
    const login = await fetch(`${base}/v1/players/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'demo' }),
    }).then((r) => r.json());
    const authorization = operatorKey ? { Authorization: `Bearer ${operatorKey}` } : {};
    const opened = await fetch(`${base}/v1/cases`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...authorization },
      body: JSON.stringify({ player_id: login.player_id, reasons: ['manual_review'], score: 40 }),
    });
    assert.equal(opened.status, 201, 'a case opens');
    const caseRow = consolePage.locator('#cases tr', { hasText: 'manual_review' });
    await caseRow.waitFor({ timeout: 15_000 });
    await consolePage.screenshot({ path: join(shots, 'console.png'), fullPage: true });
    step('the case saves as a goAML report');
    const [download] = await Promise.all([
      consolePage.waitForEvent('download', { timeout: 15_000 }),
      caseRow.getByRole('button', { name: 'goAML' }).click(),
    ]);
    const report = readFileSync(await download.path(), 'utf8');
    assert.match(report, /<report_code>STR<\/report_code>/, 'a goAML STR');
    assert.match(report, /manual_review/, 'with the case reasons');
    await caseRow.getByLabel(/Decision for case/).selectOption('clear');
    await caseRow.getByRole('button', { name: 'Decide' }).click();
    // The bots' play may open cases of its own (a big game-show win): wait for this one to go.
    await caseRow.waitFor({ state: 'detached', timeout: 15_000 });

    step('a reality check falls due on the live push; the player acknowledges it');
    // A one-minute interval counts from the login: due within a minute of it, pushed to the
    // table the player still watches.
    const token = await page.evaluate(() => sessionStorage.getItem('croupier.player'));
    const me = await fetch(`${base}/v1/players/me`, { headers: { Authorization: `Bearer ${token}` } })
      .then((r) => r.json());
    const interval = await fetch(`${base}/v1/players/${me.player_id}/reality-check`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ interval_minutes: 1 }),
    });
    assert.equal(interval.status, 200, 'the interval is set');
    const dialog = page.locator('#reality-dialog');
    await dialog.waitFor({ state: 'visible', timeout: 90_000 });
    assert.match(await page.locator('#reality-text').textContent(), /playing for \d+ minutes?\./);
    await page.screenshot({ path: join(shots, 'reality-check.png') });
    await page.getByRole('button', { name: 'Continue playing' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
    const status = await fetch(`${base}/v1/players/${me.player_id}/reality-check`, {
      headers: { Authorization: `Bearer ${token}` },
    }).then((r) => r.json());
    assert.equal(status.due, false, 'acknowledged');

    assert.deepEqual(problems, [], 'no script errors or CSP violations');
    console.log(`browser end-to-end test passed; screenshots in ${shots}`);
  } catch (error) {
    console.error(problems.join('\n'));
    if (node) console.error(`node log (end):\n${readFileSync(node.logPath, 'utf8').slice(-4000)}`);
    throw error;
  } finally {
    await browser.close();
    if (node) await node.cleanup();
  }
}

await main();
