// The operator console: tables and their current rounds, bets per second, GGR per table and
// currency, house balances, the operator audit chain's head, recent rejections, the event
// feed's lag and the open AML cases. It reads with an operator key (any role that may read);
// the one thing it changes is a case's decision (a support or admin key).
//
// The event feed is polled (GET /v1/events): its SSE stream needs an Authorization header,
// which EventSource cannot send, and a poll names its own position, so nothing is lost
// between two polls.

import { api, ApiError, credentials, serverClock, money, parseTime, el } from './api.js';

const $ = (id) => document.getElementById(id);
const PAGE = 5000;
const RATE_WINDOW_MS = 10_000;

const state = {
  key: credentials.get('operator'),
  tables: [],
  after: '0',
  betTimes: [], // {at: ledger ms, count} of bets seen in the last RATE_WINDOW_MS
  roundBets: new Map(), // round id → bets counted so far
  ggr: new Map(), // table id → {rounds, stakes, paid}
  counted: new Set(), // settled round ids already in the GGR
  oldest: null,
  newest: null,
  caughtUp: false,
  metrics: [], // [{at, counts: Map}] snapshots of non-2xx counters
  timers: [],
  feedRunning: false,
};

function show(view) {
  $('key-view').hidden = view !== 'key';
  $('console-view').hidden = view !== 'console';
  $('who').hidden = view !== 'console';
}

function stop() {
  state.timers.forEach(clearInterval);
  state.timers = [];
}

function forget(message = '') {
  stop();
  state.key = null;
  credentials.set('operator', null);
  show('key');
  $('key-error').textContent = message;
  $('key').focus();
}

function refused(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    forget(error.status === 401 ? 'The key was refused (unknown or revoked).' : 'This key may not read these routes.');
    return true;
  }
  $('console-error').textContent = error.message;
  return false;
}

$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('key').value.trim();
  if (!key) {
    $('key-error').textContent = 'Enter an operator key.';
    return;
  }
  state.key = key;
  $('key').value = '';
  try {
    await api('/v1/tables', { token: key });
  } catch (error) {
    refused(error);
    return;
  }
  credentials.set('operator', key);
  start();
  $('main').focus();
});

$('forget').addEventListener('click', () => forget());

const get = (path) => api(path, { token: state.key || undefined });

function start() {
  show('console');
  $('key-error').textContent = '';
  stop();
  refreshTables();
  refreshSlow();
  state.timers.push(setInterval(refreshTables, 1000), setInterval(refreshSlow, 5000),
    setInterval(followFeed, 1000), setInterval(renderFeedState, 500));
  followFeed();
}

// ----------------------------------------------------------------------- tables, rounds

async function refreshTables() {
  try {
    state.tables = await get('/v1/tables');
    const current = await Promise.all(state.tables.map((table) => table.round_id
      ? get(`/v1/tables/${table.id}/rounds?limit=1&bets_limit=1`).then((r) => r.rounds[0]).catch(() => null)
      : null));
    $('console-error').textContent = '';
    $('tables').replaceChildren(...state.tables.map((table, i) => {
      const round = current[i];
      const left = table.closes_at ? parseTime(table.closes_at) - serverClock.now() : null;
      return el('tr', {},
        el('th', { scope: 'row', text: String(table.id) }),
        el('td', { text: `${table.game} (${table.currency})` }),
        el('td', { text: table.state }),
        el('td', { text: table.round_id ? `#${Number(BigInt(table.round_id) & 0xffffffffn)}` : '—' }),
        el('td', { text: left === null ? '—' : left > 0 ? `in ${(left / 1000).toFixed(1)} s` : 'closed' }),
        el('td', { class: 'num', text: round ? String(round.bets_count) : '—' }),
        el('td', { class: 'num', text: round ? money(round.stakes_total, table.currency) : '—' }));
    }));
    renderGgr();
  } catch (error) {
    refused(error);
  }
}

// ------------------------------------------------ health, audit head, house, rejections

async function refreshSlow() {
  try {
    const health = await fetch('/healthz', { cache: 'no-store' });
    const mode = state.key ? '' : ' (protected mode: no key needed on loopback)';
    $('node-health').textContent = health.ok ? `Node: ok${mode}` : `Node: ${(await health.json()).error}`;
  } catch (error) {
    $('node-health').textContent = 'Node: unreachable';
  }
  try {
    const trail = await get('/v1/audit/operators?limit=1');
    $('audit-count').textContent = `${trail.count} operator actions`;
    $('audit-head').textContent = trail.head;
  } catch (error) {
    if (refused(error)) return;
  }
  const currencies = [...new Set(state.tables.map((t) => t.currency))];
  const rows = await Promise.all(currencies.map(async (currency) => {
    try {
      const account = await get(`/v1/ledgers/${encodeURIComponent(currency)}/house`);
      const net = BigInt(account.credits_posted) - BigInt(account.debits_posted);
      return el('tr', {},
        el('th', { scope: 'row', text: currency }),
        el('td', { class: 'num', text: money(account.credits_posted) }),
        el('td', { class: 'num', text: money(account.debits_posted) }),
        el('td', { class: 'num', text: money(net) }));
    } catch (error) {
      return el('tr', {}, el('th', { scope: 'row', text: currency }), el('td', { colspan: 3, text: error.message }));
    }
  }));
  $('house').replaceChildren(...rows);
  await refreshRejections();
  await refreshCases();
}

// ----------------------------------------------------------------------------- AML cases

const DECISIONS = ['clear', 'restrict', 'close_account', 'report'];

async function refreshCases() {
  let cases;
  try {
    cases = await get('/v1/cases?state=open');
  } catch (error) {
    $('cases').replaceChildren(el('tr', {}, el('td', { colspan: 7, text: error.message })));
    return;
  }
  if (cases.length === 0) {
    $('cases').replaceChildren(el('tr', {}, el('td', { colspan: 7, text: 'No open case.' })));
    return;
  }
  $('cases').replaceChildren(...cases.map(caseRow));
}

function caseRow(item) {
  const label = `Decision for case ${item.id}`;
  const select = el('select', { 'aria-label': label },
    ...DECISIONS.map((name) => el('option', { value: name, text: name.replace('_', ' ') })));
  const decide = el('button', {
    type: 'button',
    text: 'Decide',
    onclick: () => decideCase(item.id, select.value, decide),
  });
  return el('tr', {},
    el('td', { text: new Date(parseTime(item.opened_at)).toLocaleString() }),
    el('td', { class: 'mono', text: item.player_id }),
    el('td', { text: item.reasons.join(', ') }),
    el('td', { class: 'num', text: String(item.score) }),
    el('td', { text: item.action.replaceAll('_', ' ') }),
    el('td', { text: item.assignee || '—' }),
    el('td', {}, select, ' ', decide, ' ', el('button', {
      type: 'button',
      text: 'goAML',
      title: 'Download the case as a goAML suspicious-transaction report',
      onclick: () => downloadGoaml(item.id),
    })));
}

/** The case as goAML XML, saved as a file (the route needs the key, so no plain link). */
async function downloadGoaml(id) {
  try {
    const xml = await api(`/v1/cases/${id}/goaml`, { token: state.key || undefined });
    const url = URL.createObjectURL(new Blob([xml], { type: 'application/xml' }));
    const link = el('a', { href: url, download: `case-${id}-goaml.xml` });
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
    $('cases-hint').textContent = `Case ${id}: goAML report saved.`;
  } catch (error) {
    $('cases-hint').textContent = `Case ${id}: ${error.message}`;
  }
}

async function decideCase(id, decision, button) {
  button.disabled = true;
  try {
    await api(`/v1/cases/${id}/decision`, { method: 'POST', body: { decision }, token: state.key || undefined });
    $('cases-hint').textContent = `Case ${id}: ${decision}.`;
  } catch (error) {
    $('cases-hint').textContent = `Case ${id}: ${error.message}`;
  }
  button.disabled = false;
  await refreshCases();
}

/** Non-2xx answers per route and status, from the Prometheus counters. */
async function refreshRejections() {
  let text;
  try {
    const headers = state.key ? { Authorization: `Bearer ${state.key}` } : {};
    const response = await fetch('/metrics', { headers, cache: 'no-store' });
    text = await response.text();
  } catch (error) {
    return;
  }
  const counts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('croupier_http_requests_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    // Status labels are codes or classes (`404`, `4xx`): keep the client and server errors.
    if (!/^[45]/.test(labels.status || '')) continue;
    const key = `${labels.method || ''} ${labels.route || ''}|${labels.status}`;
    counts.set(key, (counts.get(key) || 0) + value);
  }
  const now = Date.now();
  state.metrics.push({ at: now, counts });
  while (state.metrics.length > 1 && now - state.metrics[1].at >= 60_000) state.metrics.shift();
  const minuteAgo = state.metrics[0].counts;
  const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([key, total]) => {
    const [route, status] = key.split('|');
    const recent = state.metrics.length > 1 ? total - (minuteAgo.get(key) || 0) : '—';
    return el('tr', {},
      el('th', { scope: 'row', class: 'mono', text: route }),
      el('td', { text: status }),
      el('td', { class: 'num', text: String(recent) }),
      el('td', { class: 'num', text: String(total) }));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 4, text: 'None since the node started.' })));
  $('rejections').replaceChildren(...rows);
}

// ----------------------------------------------------------------------------- the feed

async function followFeed() {
  if (state.feedRunning || state.key === null) return;
  state.feedRunning = true;
  try {
    for (;;) {
      const sentAt = Date.now();
      const page = await get(`/v1/events?after=${state.after}&limit=${PAGE}`);
      for (const event of page.events) consume(event, sentAt);
      state.after = page.next;
      state.caughtUp = page.events.length < PAGE;
      renderFeedState();
      if (state.caughtUp) break;
    }
    renderGgr();
  } catch (error) {
    refused(error);
  } finally {
    state.feedRunning = false;
  }
}

function consume(event, receivedAt) {
  const at = event.timestamp / 1e6;
  serverClock.observe(at, receivedAt + 1);
  if (state.oldest === null) state.oldest = at;
  state.newest = at;
  // The feed carries each round's running bet count (bets_total, at most once per the table's
  // bets_total_interval_ms, and round_closed), not every bet: the growth of those counts is
  // the bets placed.
  if (event.type === 'bets_total' || event.type === 'round_closed') {
    const before = state.roundBets.get(event.round_id) || 0;
    if (event.bets > before) state.betTimes.push({ at, count: event.bets - before });
    state.roundBets.set(event.round_id, Math.max(before, event.bets));
    if (state.roundBets.size > 1000) state.roundBets.delete(state.roundBets.keys().next().value);
  }
  if (event.type === 'round_settled' && !state.counted.has(event.round_id)) {
    state.counted.add(event.round_id);
    const ggr = state.ggr.get(event.table_id) || { rounds: 0, stakes: 0n, paid: 0n };
    ggr.rounds += 1;
    ggr.stakes += BigInt(event.stakes_total || 0);
    ggr.paid += BigInt(event.paid_total || 0);
    state.ggr.set(event.table_id, ggr);
  }
  if (event.type.startsWith('round_')) {
    const feed = $('feed');
    const number = Number(BigInt(event.round_id) & 0xffffffffn);
    const extra = event.type === 'round_settled'
      ? ` · staked ${money(event.stakes_total)} · paid ${money(event.paid_total)}` : '';
    feed.prepend(el('li', { text: `${new Date(at).toISOString().slice(11, 23)} table ${event.table_id} #${number} ${event.type.slice(6)}${extra}` }));
    while (feed.children.length > 50) feed.lastChild.remove();
  }
}

function renderFeedState() {
  const now = serverClock.now();
  while (state.betTimes.length && state.betTimes[0].at < now - RATE_WINDOW_MS) state.betTimes.shift();
  const bets = state.betTimes.reduce((sum, b) => sum + b.count, 0);
  $('bets-rate').textContent = (bets / (RATE_WINDOW_MS / 1000)).toFixed(1);
  if (state.newest === null) {
    $('feed-lag').textContent = state.caughtUp ? 'no events' : '—';
    return;
  }
  const lag = Math.max(0, now - state.newest);
  $('feed-lag').textContent = state.caughtUp ? `${(lag / 1000).toFixed(1)} s` : `catching up, ${(lag / 1000).toFixed(0)} s behind`;
  $('feed-detail').textContent = state.caughtUp
    ? 'Caught up: the time since the newest event (ledger time vs. the node\'s clock).'
    : 'Reading the retained feed from its start.';
}

function renderGgr() {
  const byId = new Map(state.tables.map((t) => [t.id, t]));
  const rows = [...state.ggr].sort((a, b) => a[0] - b[0]).map(([id, ggr]) => {
    const currency = byId.get(id) ? byId.get(id).currency : '?';
    return el('tr', {},
      el('th', { scope: 'row', text: String(id) }),
      el('td', { text: currency }),
      el('td', { class: 'num', text: String(ggr.rounds) }),
      el('td', { class: 'num', text: money(ggr.stakes) }),
      el('td', { class: 'num', text: money(ggr.paid) }),
      el('td', { class: 'num', text: money(ggr.stakes - ggr.paid) }));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 6, text: 'No settled rounds yet.' })));
  $('ggr').replaceChildren(...rows);
  if (state.oldest !== null) {
    $('ggr-since').textContent = `Settled rounds on the event feed since ${new Date(state.oldest).toISOString()} (its oldest retained event).`;
  }
}

/**
 * A node in protected mode (no operator key yet, loopback listener) lets local callers read
 * without one: then the console opens without asking.
 */
async function boot() {
  if (state.key) {
    start();
    return;
  }
  try {
    await api('/v1/tables');
    state.key = '';
    start();
  } catch (error) {
    show('key');
    $('key').focus();
  }
}

boot();
