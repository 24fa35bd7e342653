// What both pages share: calls to the node's API, the credentials kept for this tab, the
// server's clock, and money formatting.

/** An API refusal: the JSON error body's `error` code, its message and the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || 'http_error';
    this.body = body || {};
  }
}

/**
 * Credentials live in sessionStorage: they last as long as the tab, are not sent to other
 * tabs or sites, and never reach a cookie the browser would attach by itself (so no CSRF).
 */
export const credentials = {
  get(name) {
    return sessionStorage.getItem(`croupier.${name}`);
  },
  set(name, value) {
    if (value) sessionStorage.setItem(`croupier.${name}`, value);
    else sessionStorage.removeItem(`croupier.${name}`);
  },
};

/**
 * The server's clock, as an offset from this browser's. Betting closes on the ledger's clock,
 * so a countdown from the browser's own clock alone could show a window that is already
 * shut. Each sample bounds the offset: a timestamp the server wrote before we received it
 * gives a lower bound (the message took some time to arrive); an HTTP `Date` header (whole
 * seconds) gives a lower and an upper bound. The estimate is the tightest lower bound the
 * upper bounds allow.
 */
export const serverClock = {
  lower: -Infinity,
  upper: Infinity,
  samples: 0,
  /** A server timestamp (ms since the epoch) seen at local time `receivedAt`. */
  observe(serverMs, receivedAt = Date.now()) {
    if (!Number.isFinite(serverMs)) return;
    this.lower = Math.max(this.lower, serverMs - receivedAt);
    this.samples += 1;
  },
  /** An HTTP Date header for a request sent at `sentAt` and answered at `receivedAt`. */
  observeDate(header, sentAt, receivedAt) {
    const date = Date.parse(header || '');
    if (!Number.isFinite(date)) return;
    this.lower = Math.max(this.lower, date - receivedAt);
    this.upper = Math.min(this.upper, date + 1000 - sentAt);
    this.samples += 1;
  },
  offset() {
    if (this.lower === -Infinity) return this.upper === Infinity ? 0 : this.upper - 500;
    // Bounds that cross mean the server's clock moved (or ours): trust the latest kind.
    return this.lower <= this.upper ? this.lower : (this.lower + this.upper) / 2;
  },
  now() {
    return Date.now() + this.offset();
  },
};

/** Calls the API; answers the parsed JSON body or throws an ApiError. */
export async function api(path, { method = 'GET', body, token } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, { error: 'network', message: 'the node cannot be reached' });
  }
  serverClock.observeDate(response.headers.get('Date'), sentAt, Date.now());
  const type = response.headers.get('Content-Type') || '';
  const parsed = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) throw new ApiError(response.status, typeof parsed === 'object' ? parsed : null);
  return parsed;
}

/** Minor units as the currency's major units (2 decimals), e.g. 100050 → "1,000.50". */
export function money(minor, currency) {
  const value = BigInt(minor ?? 0);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cents = (abs % 100n).toString().padStart(2, '0');
  return `${negative ? '-' : ''}${whole}.${cents}${currency ? ` ${currency}` : ''}`;
}

/** A fresh 64-bit id as decimal text (bet ids must be unique per round; 0 is refused). */
export function freshId() {
  const words = crypto.getRandomValues(new Uint32Array(2));
  const id = (BigInt(words[0] & 0x7fffffff) << 32n) | BigInt(words[1]);
  return (id === 0n ? 1n : id).toString();
}

/** RFC 3339 text as ms since the epoch. */
export function parseTime(text) {
  return typeof text === 'number' ? text : Date.parse(text);
}

/** Shorthand for building elements: el('li', {class: 'x', text: 'y'}, child...). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
