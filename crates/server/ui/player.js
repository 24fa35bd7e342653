// The player page: log in, pick a table, follow its rounds live, bet, see results, and verify
// past rounds in the browser. Views are chosen by the URL's hash (#/table/<id>), so the back
// button and bookmarks work.

import { api, ApiError, credentials, serverClock, money, freshId, parseTime, el } from './api.js';
import { BetLine } from './bets.js';
import { verifyRound, verifyStudioRound, decodeOutcome, drawOutcome, FairStream } from './fair.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const svg = (tag, attributes = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
};

/** European wheel order, clockwise from 0: where each pocket sits on the drawn wheel. */
const EUROPEAN_WHEEL = [0, 32, 15, 19, 4, 21, 2, 25, 17, 34, 6, 27, 13, 36, 11, 30, 8, 23, 10,
  5, 24, 16, 33, 1, 20, 14, 31, 9, 22, 18, 29, 7, 28, 12, 35, 3, 26];
const RED = new Set([1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36]);
const PALETTE = ['#f2c14e', '#5fa8d3', '#9b5de5', '#43aa8b', '#f25f5c', '#4d908e', '#f9844a', '#277da1'];
const SPIN_MS = 4000;

const state = {
  token: credentials.get('player'),
  me: null,
  tables: [],
  table: null,
  round: null, // {round_id, state, closes_at (ms), commitment}
  chip: null,
  stack: new Map(), // spot name → minor units, not yet placed
  placed: new Map(), // round_id → stake placed this session
  announced: new Set(), // round ids whose result was shown
  pendingBet: null, // {bet_id, key}: a bet whose answer was lost, retried with the same id
  live: null,
  bets: null, // BetLine: the table's bet socket, or HTTP while it is not open
  rotation: 0,
  timer: null,
};

const roundNumber = (roundId) => Number(BigInt(roundId) & 0xffffffffn);

// ---------------------------------------------------------------------------------- views

function show(view) {
  for (const id of ['login-view', 'lobby-view', 'table-view']) $(id).hidden = id !== view;
  $('who').hidden = view === 'login-view';
}

async function route() {
  stopTable();
  if (!state.token) {
    show('login-view');
    $('login-username').focus();
    return;
  }
  try {
    if (!state.me) await loadMe();
    state.tables = await api('/v1/tables', { token: state.token });
  } catch (error) {
    if (handleAuth(error)) return;
    show('lobby-view');
    $('lobby-error').textContent = `Tables could not be loaded: ${error.message}`;
    return;
  }
  const match = /^#\/table\/(\d+)$/.exec(location.hash);
  const table = match && state.tables.find((t) => t.id === Number(match[1]));
  if (table) openTable(table);
  else renderLobby();
}

/** A refused session sends the player back to the login form. */
function handleAuth(error) {
  if (!(error instanceof ApiError) || error.status !== 401) return false;
  logout('Your session has ended; please log in again.');
  return true;
}

function logout(message = '') {
  if (state.token) api('/v1/players/logout', { method: 'POST', token: state.token }).catch(() => {});
  state.token = null;
  state.me = null;
  credentials.set('player', null);
  stopTable();
  show('login-view');
  $('login-error').textContent = message;
  $('login-username').focus();
}

/**
 * This browser's device id: a random token kept in localStorage (not a fingerprint), sent at
 * login so the operator's AML scoring can see many accounts played from one device.
 */
function deviceId() {
  let id = localStorage.getItem('croupier.device');
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem('croupier.device', id);
  }
  return id;
}

async function loadMe() {
  state.me = await api('/v1/players/me', { token: state.token });
  $('username').textContent = state.me.username;
  renderBalance();
}

function renderBalance() {
  const balances = state.me ? state.me.balances : {};
  const currency = state.table && state.table.currency;
  const shown = currency ? [[currency, balances[currency] ?? 0]] : Object.entries(balances);
  $('balance').textContent = shown.map(([c, v]) => money(v, c)).join(' · ') || '—';
}

function setBalance(currency, balance) {
  if (!state.me || balance === undefined || balance === null) return;
  state.me.balances[currency] = balance;
  renderBalance();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  $('login-error').textContent = '';
  if (!username || !password) {
    $('login-error').textContent = 'Enter your username and password.';
    return;
  }
  try {
    const body = { username, password, device_id: deviceId() };
    const session = await api('/v1/players/login', { method: 'POST', body });
    state.token = session.token;
    credentials.set('player', session.token);
    $('login-password').value = '';
    await route();
    $('main').focus();
  } catch (error) {
    $('login-error').textContent = error.code === 'invalid_credentials'
      ? 'Unknown username or wrong password.'
      : `Login failed: ${error.message}`;
  }
});

$('logout').addEventListener('click', () => logout());
$('back').addEventListener('click', () => { location.hash = ''; });
window.addEventListener('hashchange', route);

function renderLobby() {
  show('lobby-view');
  $('lobby-error').textContent = '';
  const list = $('table-list');
  list.replaceChildren(...state.tables.map((table) => el('li', {},
    el('a', { href: `#/table/${table.id}`, class: 'table-link' },
      el('strong', { text: `Table ${table.id}` }),
      el('span', { text: ` ${gameName(table)} · ${table.currency} · ${table.state}` }),
      el('span', { class: 'limits', text: ` bets ${money(table.bet_min)}–${money(table.bet_max)}` })))));
  if (!state.tables.length) list.append(el('li', { text: 'No tables are running.' }));
  renderBalance();
}

// ---------------------------------------------------------------------------- table view

function openTable(table) {
  state.table = table;
  state.stack = new Map();
  state.round = table.round_id
    ? { round_id: table.round_id, state: table.state, closes_at: parseTime(table.closes_at) }
    : null;
  show('table-view');
  $('table-title').textContent = `Table ${table.id}: ${gameName(table)} (${table.currency})`;
  $('outcome').textContent = 'Waiting for the next draw';
  $('bet-message').textContent = '';
  $('results').replaceChildren();
  renderBalance();
  renderWheel();
  renderChips();
  renderLayout();
  renderRound();
  loadRounds();
  state.timer = setInterval(renderCountdown, 200);
  state.live = new LiveFeed(table, state.token, onLiveMessage, (text) => {
    $('live-state').textContent = text;
  });
  state.bets = new BetLine(table.id, state.token);
}

function stopTable() {
  if (state.live) state.live.stop();
  state.live = null;
  if (state.bets) state.bets.stop();
  state.bets = null;
  clearInterval(state.timer);
  state.table = null;
}

function renderRound() {
  const round = state.round;
  $('round-label').textContent = round ? `Round #${roundNumber(round.round_id)}` : 'No round';
  $('round-state').textContent = round ? round.state : 'idle';
  const open = round && round.state === 'open' && round.closes_at > serverClock.now();
  $('place').disabled = !open;
  renderCountdown();
}

function renderCountdown() {
  const round = state.round;
  if (!round || round.state !== 'open') {
    $('countdown').textContent = round ? 'betting closed' : '';
    return;
  }
  const left = round.closes_at - serverClock.now();
  if (left <= 0) {
    $('countdown').textContent = 'betting closed';
    $('place').disabled = true;
    return;
  }
  $('countdown').textContent = `betting closes in ${(left / 1000).toFixed(1)} s`;
}

// The wheel: segments drawn clockwise from the pointer at the top; the rotor turns so that the
// drawn segment ends under the pointer.
function wheelSegments(table) {
  if (table.game === 'roulette') {
    return EUROPEAN_WHEEL.map((pocket) => ({
      label: String(pocket),
      fill: pocket === 0 ? '#1b7f3b' : RED.has(pocket) ? '#c8102e' : '#1d1d1f',
    }));
  }
  const factors = table.layout.multipliers || {};
  return table.layout.segments.map((symbol) => ({
    label: symbol,
    fill: symbol in factors ? '#d4af37' : PALETTE[table.spots.indexOf(symbol) % PALETTE.length],
  }));
}

function renderWheel() {
  const wheel = $('wheel');
  const segments = wheelSegments(state.table);
  const step = 360 / segments.length;
  const rotor = svg('g', { id: 'rotor' });
  segments.forEach((segment, i) => {
    const a0 = ((i * step - 90) * Math.PI) / 180;
    const a1 = (((i + 1) * step - 90) * Math.PI) / 180;
    const d = `M0 0 L${100 * Math.cos(a0)} ${100 * Math.sin(a0)} A100 100 0 0 1 ${100 * Math.cos(a1)} ${100 * Math.sin(a1)} Z`;
    rotor.append(svg('path', { d, fill: segment.fill, class: 'segment', 'data-index': i }));
    const mid = (i + 0.5) * step;
    const text = svg('text', {
      x: 0, y: -84, transform: `rotate(${mid})`, class: 'segment-label',
      'font-size': segments.length > 40 ? 7 : 9,
    });
    text.textContent = shortLabel(segment.label);
    rotor.append(text);
  });
  rotor.append(svg('circle', { r: 40, class: 'hub' }));
  state.rotation = 0;
  rotor.style.transform = 'rotate(0deg)';
  const hubLabel = svg('text', { id: 'hub-label', class: 'hub-label', x: 0, y: 0, 'aria-hidden': 'true' });
  wheel.replaceChildren(rotor, hubLabel, svg('path', { d: 'M0 -92 L-7 -108 L7 -108 Z', class: 'pointer' }));
}

/** A segment's name in at most 3 characters (`coin_flip` → `CF`); the spots show it whole. */
function shortLabel(label) {
  if (label.length <= 3) return label;
  return label.split('_').map((word) => word[0].toUpperCase()).join('').slice(0, 3);
}

/** Turns the wheel so that segment `index` (of wheelSegments) stops under the pointer. */
function spinTo(index) {
  const rotor = $('rotor');
  const count = wheelSegments(state.table).length;
  if (!rotor || index === null || index < 0) return Promise.resolve();
  for (const hit of rotor.querySelectorAll('.hit')) hit.classList.remove('hit');
  const target = -((index + 0.5) * 360) / count;
  const turn = ((((target - state.rotation) % 360) + 360) % 360) + 360 * 4;
  state.rotation += turn;
  rotor.style.transform = `rotate(${state.rotation}deg)`;
  const reduced = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  return new Promise((resolve) => setTimeout(() => {
    const path = rotor.querySelector(`path[data-index="${index}"]`);
    if (path) path.classList.add('hit');
    resolve();
  }, reduced ? 0 : SPIN_MS));
}

function wheelIndex(table, outcomeHex) {
  const decoded = decodeOutcome(table, outcomeHex);
  if (!decoded) return { index: null, label: '' };
  const index = table.game === 'roulette' ? EUROPEAN_WHEEL.indexOf(decoded.segment) : decoded.segment;
  return { index, label: decoded.label };
}

// Chips and the betting layout.
function renderChips() {
  const { bet_min: min, bet_max: max } = state.table;
  const values = [1, 5, 10, 50, 100, 500].map((f) => min * f).filter((v) => v <= max).slice(0, 5);
  if (!values.length) values.push(min);
  state.chip = values[Math.min(1, values.length - 1)];
  $('chips').replaceChildren(...values.map((value, i) => {
    const id = `chip-${i}`;
    const input = el('input', {
      type: 'radio', name: 'chip', id, value, checked: value === state.chip,
      onchange: () => { state.chip = value; },
    });
    return el('span', { class: 'chip' }, input, el('label', { for: id, text: money(value) }));
  }));
}

function spotLabel(name) {
  const [kind, numbers] = name.split(':');
  if (kind === 'straight') return numbers;
  if (kind === 'column') return '2 to 1';
  if (kind === 'dozen') return ['1st 12', '2nd 12', '3rd 12'][Number(numbers) - 1];
  if (kind === 'low') return '1–18';
  if (kind === 'high') return '19–36';
  return name.replace('_', ' ');
}

function spotButton(name, extraClass = '') {
  const button = el('button', {
    type: 'button', class: `spot ${extraClass}`, 'data-spot': name,
    onclick: () => addChip(name),
  }, el('span', { class: 'spot-name', text: spotLabel(name) }), el('span', { class: 'stack' }));
  updateSpot(button);
  return button;
}

/** Places a cell on both grids: wide (numbers in 3 rows) and narrow (in 12 rows). */
function cell(button, wide, narrow) {
  button.style.setProperty('--wc', wide[0]);
  button.style.setProperty('--wr', wide[1]);
  button.style.setProperty('--nc', narrow[0]);
  button.style.setProperty('--nr', narrow[1]);
  return button;
}

function renderLayout() {
  const layout = $('layout');
  const table = state.table;
  layout.className = table.game === 'roulette' ? 'layout cloth' : 'layout wheel-spots';
  if (table.game !== 'roulette') {
    layout.replaceChildren(...table.spots.map((name, i) => {
      const button = spotButton(name);
      button.style.setProperty('--spot-color', PALETTE[i % PALETTE.length]);
      return button;
    }));
    return;
  }
  const has = (name) => table.spots.includes(name);
  const cells = [cell(spotButton('straight:0', 'green'), ['1', '1 / 4'], ['1 / 4', '1'])];
  for (let n = 1; n <= 36; n++) {
    const column = Math.ceil(n / 3);
    const row = 3 - ((n - 1) % 3);
    cells.push(cell(spotButton(`straight:${n}`, RED.has(n) ? 'red' : 'black'),
      [String(column + 1), String(row)], [String(((n - 1) % 3) + 1), String(column + 1)]));
  }
  for (let c = 1; c <= 3; c++) {
    cells.push(cell(spotButton(`column:${c}`), ['14', String(4 - c)], [String(c), '14']));
  }
  for (let d = 1; d <= 3; d++) {
    const from = 2 + 4 * (d - 1);
    cells.push(cell(spotButton(`dozen:${d}`), [`${from} / span 4`, '4'], ['4', `${from} / span 4`]));
  }
  ['low', 'even', 'red', 'black', 'odd', 'high'].forEach((name, i) => {
    const from = 2 + 2 * i;
    cells.push(cell(spotButton(name, name === 'red' || name === 'black' ? name : ''),
      [`${from} / span 2`, '5'], ['5', `${from} / span 2`]));
  });
  layout.replaceChildren(...cells.filter((c) => has(c.dataset.spot)));
}

function updateSpot(button) {
  const name = button.dataset.spot;
  const amount = state.stack.get(name) || 0;
  button.querySelector('.stack').textContent = amount ? money(amount) : '';
  button.classList.toggle('staked', amount > 0);
  const pretty = name.replace(':', ' ').replace('_', ' ');
  button.setAttribute('aria-label', amount ? `${pretty}, ${money(amount)} staked` : pretty);
}

function addChip(name) {
  const { bet_max: max } = state.table;
  const current = state.stack.get(name) || 0;
  if (current + state.chip > max) {
    $('bet-message').textContent = `At most ${money(max)} on one spot.`;
    return;
  }
  state.stack.set(name, current + state.chip);
  renderStack();
}

function renderStack() {
  for (const button of $('layout').querySelectorAll('.spot')) updateSpot(button);
  const total = [...state.stack.values()].reduce((a, b) => a + b, 0);
  $('stake').textContent = money(total, state.table.currency);
}

$('clear').addEventListener('click', () => {
  state.stack.clear();
  renderStack();
  $('bet-message').textContent = 'Bet cleared.';
});

$('bet-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const table = state.table;
  const round = state.round;
  const message = $('bet-message');
  if (!state.stack.size) {
    message.textContent = 'Choose a chip and press one or more spots first.';
    return;
  }
  if (!round || round.state !== 'open') {
    message.textContent = 'Betting is closed; wait for the next round.';
    return;
  }
  const spots = [...state.stack].map(([bet, amount]) => ({ bet, amount }));
  // The same bet retried after a lost answer keeps its id: the node answers the original
  // result instead of taking the stake twice.
  const key = JSON.stringify([round.round_id, spots]);
  const betId = state.pendingBet && state.pendingBet.key === key ? state.pendingBet.bet_id : freshId();
  state.pendingBet = { key, bet_id: betId };
  $('place').disabled = true;
  message.textContent = 'Placing…';
  try {
    const answer = await state.bets.place({ bet_id: betId, round_id: round.round_id, spots });
    state.pendingBet = null;
    state.placed.set(answer.round_id, (state.placed.get(answer.round_id) || 0) + answer.stake);
    setBalance(table.currency, answer.balance);
    state.stack.clear();
    renderStack();
    message.textContent = `Bet of ${money(answer.stake, table.currency)} placed on round #${roundNumber(answer.round_id)}.`;
  } catch (error) {
    if (handleAuth(error)) return;
    if (error.status !== 0 && error.code !== 'outcome_unknown' && error.code !== 'deadline_exceeded') {
      state.pendingBet = null;
    }
    message.textContent = betRefusal(error, table.currency);
  } finally {
    renderRound();
  }
});

function betRefusal(error, currency) {
  switch (error.code) {
    case 'reality_check_due':
      loadRealityCheck();
      return 'A reality check is due: acknowledge it to play on.';
    case 'insufficient_funds': return `Not enough balance (${money(error.body.balance, currency)}).`;
    case 'round_closed': return 'Betting closed before the bet arrived.';
    case 'bet_below_min': case 'bet_above_max': return 'A spot is outside the table limits.';
    case 'network': case 'outcome_unknown': case 'deadline_exceeded':
      return 'The answer was lost; press Place bet again to retry the same bet safely.';
    default: return `Bet refused: ${error.message}`;
  }
}

// ------------------------------------------------------------------------- reality checks

/** The session's time and net position, shown until the player acknowledges them. */
function showRealityCheck(status) {
  const positions = (status.net_position || [])
    .map((p) => `${p.net > 0 ? '+' : ''}${money(p.net, p.currency)}`);
  const net = positions.length ? `Net position this session: ${positions.join(', ')}.` : 'No bets yet this session.';
  const minutes = status.session_minutes;
  const played = `You have been playing for ${minutes} minute${minutes === 1 ? '' : 's'}.`;
  $('reality-text').textContent = `${played} ${net}`;
  $('reality-error').textContent = '';
  const dialog = $('reality-dialog');
  if (!dialog.open) dialog.showModal();
}

async function loadRealityCheck() {
  if (!state.me) return;
  try {
    const status = await api(`/v1/players/${state.me.player_id}/reality-check`, { token: state.token });
    if (status.due) showRealityCheck(status);
  } catch (error) {
    handleAuth(error);
  }
}

$('reality-continue').addEventListener('click', async () => {
  try {
    await api(`/v1/players/${state.me.player_id}/reality-check/acknowledgement`,
      { method: 'POST', token: state.token });
    $('reality-dialog').close();
    $('bet-message').textContent = '';
  } catch (error) {
    $('reality-error').textContent = error.message;
  }
});

$('reality-logout').addEventListener('click', () => {
  $('reality-dialog').close();
  $('logout').click();
});

// ------------------------------------------------------------------------- live messages

/** The game, and whether a live studio's wheel decides it rather than the RNG. */
function gameName(table) {
  return table.studio ? `${table.game} (live studio)` : table.game;
}

async function onLiveMessage(message) {
  if (message.type === 'reality_check') {
    showRealityCheck(message);
    return;
  }
  const table = state.table;
  if (!table || message.table_id !== table.id) return;
  if (message.timestamp) serverClock.observe(parseTime(message.timestamp));
  if (message.missed) {
    // Messages were lost (the feed moved past them): what they said is in game recall.
    loadRounds();
    loadMe().catch(handleAuth);
  }
  const current = state.round && state.round.round_id === message.round_id ? state.round : null;
  switch (message.type) {
    case 'round_opened':
      if (!current) {
        state.round = { round_id: message.round_id, state: 'open' };
        $('totals').textContent = '';
        loadRounds();
      }
      state.round.state = 'open';
      state.round.closes_at = parseTime(message.closes_at);
      state.round.commitment = message.commitment;
      break;
    case 'bets_total':
    case 'round_closed':
      $('totals').textContent = `${message.bets} bets · ${money(message.stakes_total, table.currency)} staked`;
      if (message.type === 'round_closed' && current) current.state = 'closed';
      break;
    case 'round_drawn': {
      // The same draw again (from the other source, or a resumed socket) spins once.
      if (current && ['drawn', 'settled', 'voided'].includes(current.state)) break;
      if (current) current.state = 'drawn';
      let { index, label } = wheelIndex(table, message.outcome);
      if (table.game === 'money-wheel' && message.server_seed) {
        // The outcome names the number, not which of its segments the pointer stopped on;
        // the revealed seed replays the spin to the exact segment.
        try {
          const stream = await FairStream.create(message.server_seed, message.client_seed, message.nonce);
          const drawn = await drawOutcome(table, stream);
          if (drawn.outcome === message.outcome && drawn.segment !== null) index = drawn.segment;
        } catch (error) {
          // Keep the number's first segment.
        }
      }
      $('outcome').textContent = 'Spinning…';
      $('hub-label').textContent = '';
      renderRound();
      await spinTo(index);
      $('outcome').textContent = `Result: ${message.label || label}`;
      $('hub-label').textContent = shortLabel((message.label || label).split(' ')[0]);
      highlightWinners(message.label || label);
      break;
    }
    case 'round_settled':
    case 'round_voided':
      if (current) current.state = message.type === 'round_settled' ? 'settled' : 'voided';
      await announce(message);
      loadRounds();
      break;
    default:
      break;
  }
  renderRound();
}

function highlightWinners(label) {
  for (const button of $('layout').querySelectorAll('.spot')) {
    const name = button.dataset.spot;
    const hit = state.table.game === 'roulette' ? name === `straight:${label}` : label.split(' ')[0] === name;
    button.classList.toggle('winner', hit);
  }
}

/** The player's own result for a finished round, once. */
async function announce(message) {
  if (state.announced.has(message.round_id)) return;
  let mine = message.player;
  if (!mine && state.placed.has(message.round_id)) {
    // The message did not name this player (anonymous connection): ask game recall.
    try {
      const round = await api(`/v1/rounds/${message.round_id}?bets_limit=1000`, { token: state.token });
      mine = ownSummary(round);
    } catch (error) {
      handleAuth(error);
    }
  }
  if (!mine) return;
  state.announced.add(message.round_id);
  const currency = state.table.currency;
  setBalance(currency, mine.balance);
  const verdict = message.type === 'round_voided'
    ? 'round voided, stake returned'
    : mine.paid > 0 ? `won ${money(mine.paid, currency)}` : 'no win';
  const text = `Round #${roundNumber(message.round_id)}: staked ${money(mine.stake, currency)}, ${verdict}. Balance ${money(mine.balance, currency)}.`;
  const results = $('results');
  results.prepend(el('li', { class: mine.paid > 0 ? 'won' : 'lost', text }));
  while (results.children.length > 10) results.lastChild.remove();
}

function ownSummary(round) {
  const bets = (round.bets || []).filter((b) => b.paid !== null && b.paid !== undefined);
  if (!bets.length) return null;
  return {
    bets: bets.length,
    stake: bets.reduce((a, b) => a + b.stake, 0),
    paid: bets.reduce((a, b) => a + b.paid, 0),
    balance: bets[bets.length - 1].balance_after,
  };
}

// ---------------------------------------------------------------------- last rounds, proof

async function loadRounds() {
  const table = state.table;
  if (!table) return;
  let rounds;
  try {
    ({ rounds } = await api(`/v1/tables/${table.id}/rounds?limit=10&bets_limit=1000`, { token: state.token }));
  } catch (error) {
    handleAuth(error);
    return;
  }
  if (state.table !== table) return;
  $('rounds').replaceChildren(...rounds.map((round) => {
    const mine = round.bets || [];
    const stake = mine.reduce((a, b) => a + b.stake, 0);
    const paid = mine.reduce((a, b) => a + (b.paid || 0), 0);
    const status = el('span', { class: 'proof', role: 'status' });
    const verify = el('button', {
      type: 'button', class: 'quiet verify', disabled: !round.server_seed && !round.studio_signature,
      'aria-label': `Verify round ${roundNumber(round.round_id)}`,
      onclick: async () => {
        status.textContent = 'checking…';
        try {
          const studio = round.source === 'studio';
          const result = studio ? await verifyStudioRound(table, round) : await verifyRound(table, round);
          const proven = studio ? 'signed by the studio' : 'verified';
          status.textContent = result.ok ? `✓ ${proven} (${result.drawn.label})` : `✗ ${result.reason}`;
          status.className = result.ok ? 'proof ok' : 'proof bad';
        } catch (error) {
          status.textContent = `✗ ${error.message}`;
          status.className = 'proof bad';
        }
      },
    }, 'Verify');
    const outcome = round.outcome ? decodeOutcome(table, round.outcome).label : '—';
    return el('tr', { 'data-round': round.round_id },
      el('th', { scope: 'row', text: `#${roundNumber(round.round_id)}` }),
      el('td', { text: round.state }),
      el('td', { text: outcome }),
      el('td', { text: mine.length ? money(stake) : '—' }),
      el('td', { text: mine.length && mine.every((b) => b.paid !== null) ? money(paid) : '—' }),
      el('td', {}, verify, ' ', status));
  }));
}

// ----------------------------------------------------------------------------- live feed

/**
 * The table's live messages: the WebSocket `/v1/live` (the player named by its session
 * token, offered as a subprotocol since a browser cannot set headers on a WebSocket), resumed
 * after the last `seq` seen. Where the node offers no WebSocket, or while it cannot be
 * reached, game recall is polled and its state changes become the same messages.
 */
class LiveFeed {
  constructor(table, token, onMessage, onStatus) {
    Object.assign(this, { table, token, onMessage, onStatus });
    this.lastSeq = null;
    this.stopped = false;
    this.queue = Promise.resolve();
    this.pollTimer = null;
    this.known = null;
    this.connect();
  }

  deliver(message) {
    // One at a time, in order: a draw's animation finishes before the settlement shows.
    this.queue = this.queue.then(() => this.onMessage(message)).catch(() => {});
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const after = this.lastSeq === null ? '' : `&after=${this.lastSeq}`;
    const protocols = ['croupier.live.v1'];
    if (this.token) protocols.push(`bearer.${this.token}`);
    let opened = false;
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/v1/live?table=${this.table.id}${after}`, protocols);
    } catch (error) {
      this.fallBack();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
      this.stopPolling();
      this.onStatus('Live');
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (typeof message.seq === 'number') {
        if (this.lastSeq !== null && message.seq <= this.lastSeq) return;
        this.lastSeq = message.seq;
      }
      this.deliver(message);
    };
    socket.onclose = () => {
      if (this.stopped) return;
      if (opened) {
        this.onStatus('Reconnecting…');
        setTimeout(() => this.connect(), 1000);
      } else {
        this.fallBack();
      }
    };
  }

  /** No WebSocket: poll, and try the socket again now and then. */
  fallBack() {
    if (this.stopped) return;
    this.onStatus('Following by polling');
    if (!this.pollTimer) {
      this.poll();
      this.pollTimer = setInterval(() => this.poll(), 1000);
    }
    setTimeout(() => this.connect(), 15000);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  stop() {
    this.stopped = true;
    this.stopPolling();
    if (this.socket) this.socket.close(1000);
  }

  async poll() {
    let rounds;
    try {
      ({ rounds } = await api(`/v1/tables/${this.table.id}/rounds?limit=2&bets_limit=1000`, { token: this.token }));
    } catch (error) {
      if (handleAuth(error)) this.stop();
      return;
    }
    if (this.stopped) return;
    const rank = { open: 1, closed: 2, drawn: 3, voiding: 3, settled: 4, voided: 4 };
    const first = this.known === null;
    if (first) this.known = new Map();
    for (const round of rounds.slice().reverse()) {
      const was = this.known.get(round.round_id) ?? 0;
      const now = rank[round.state] ?? 0;
      this.known.set(round.round_id, Math.max(was, now));
      // Rounds finished before the page opened are history, not news.
      if (first && now === 4) continue;
      for (const message of this.messagesBetween(round, was, now)) this.deliver(message);
    }
  }

  messagesBetween(round, was, now) {
    const base = { table_id: this.table.id, round_id: round.round_id };
    const out = [];
    if (was < 1 && now >= 1) {
      out.push({ ...base, type: 'round_opened', commitment: round.commitment, closes_at: round.closes_at,
        client_seed: round.client_seed, nonce: round.nonce });
    }
    if (was < 2 && now >= 2) {
      out.push({ ...base, type: 'round_closed', bets: round.bets_count ?? 0, stakes_total: round.stakes_total });
    }
    if (was < 3 && now >= 3 && round.outcome) {
      out.push({ ...base, type: 'round_drawn', outcome: round.outcome, server_seed: round.server_seed,
        label: decodeOutcome(this.table, round.outcome).label, commitment: round.commitment });
    }
    if (was < 4 && now >= 4) {
      out.push({ ...base, type: round.state === 'voided' ? 'round_voided' : 'round_settled',
        stakes_total: round.stakes_total, paid_total: round.paid_total, player: ownSummary(round) });
    }
    return out;
  }
}

route();
