// Provably-fair verification, in the browser (Web Crypto), with no help from the server: the
// player checks a revealed seed against the commitment published before betting and replays
// the draw. It mirrors crates/rng (FairStream, sample::below_u32), crates/games/src/live.rs
// and the games' draw functions word for word; docs/rng.md states the scheme. The same module
// runs under Node (globalThis.crypto) in tests/e2e/fair-check.mjs, which compares it with
// `croupier fair`.

const encoder = new TextEncoder();
const subtle = globalThis.crypto.subtle;

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** hex(SHA-256(text)): a round's commitment is this of its server seed's hex text. */
export async function sha256Hex(text) {
  return hex(await subtle.digest('SHA-256', encoder.encode(text)));
}

/**
 * The outcome stream: block r = HMAC-SHA256(key = server seed text, "client_seed:nonce:r"),
 * consumed 4 bytes (big-endian) per 32-bit word.
 */
export class FairStream {
  constructor(key, clientSeed, nonce) {
    this.key = key;
    this.clientSeed = clientSeed;
    this.nonce = nonce;
    this.round = -1;
    this.block = null;
    this.position = 32;
  }

  static async create(serverSeed, clientSeed, nonce) {
    const key = await subtle.importKey(
      'raw', encoder.encode(serverSeed), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new FairStream(key, clientSeed, nonce);
  }

  async nextByte() {
    if (this.position === 32) {
      this.round += 1;
      const message = `${this.clientSeed}:${this.nonce}:${this.round}`;
      this.block = new Uint8Array(await subtle.sign('HMAC', this.key, encoder.encode(message)));
      this.position = 0;
    }
    return this.block[this.position++];
  }

  async nextU32() {
    let word = 0;
    for (let i = 0; i < 4; i++) word = word * 256 + (await this.nextByte());
    return word;
  }
}

/** Uniform integer in [0, n): Lemire's multiply-shift with rejection (sample::below_u32). */
export async function belowU32(stream, n) {
  const bigN = BigInt(n);
  const draw = async () => BigInt(await stream.nextU32()) * bigN;
  let product = await draw();
  const low = (p) => p & 0xffffffffn;
  if (low(product) < bigN) {
    const zone = (0x100000000n - bigN) % bigN;
    while (low(product) < zone) product = await draw();
  }
  return Number(product >> 32n);
}

/** The index whose cumulative weight first exceeds a uniform point (games' Weights::draw). */
export async function weightedIndex(stream, weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  const point = await belowU32(stream, total);
  let running = 0;
  for (let i = 0; i < weights.length; i++) {
    running += weights[i];
    if (point < running) return i;
  }
  throw new Error('weights do not cover the point');
}

function leHex(value, bytes) {
  let big = BigInt(value);
  let out = '';
  for (let i = 0; i < bytes; i++) {
    out += Number(big & 0xffn).toString(16).padStart(2, '0');
    big >>= 8n;
  }
  return out;
}

/**
 * Replays a round of `table` (as GET /v1/tables lists it) from the stream: the outcome's hex
 * encoding (as the server stores it), a label, and what a wheel shows.
 */
export async function drawOutcome(table, stream) {
  const { layout, spots } = table;
  const segments = layout.segments;
  if (table.game === 'roulette') {
    const pocket = await belowU32(stream, segments.length);
    return { outcome: leHex(pocket, 1), label: String(pocket), segment: pocket };
  }
  if (table.game === 'money-wheel') {
    const factors = layout.multipliers || {};
    let multiplier = 1;
    let segment = null;
    // Re-spins on a multiplier segment until a number lands (money_wheel::spin).
    while (multiplier < layout.win_cap) {
      segment = await belowU32(stream, segments.length);
      const symbol = segments[segment];
      if (symbol in factors) {
        multiplier *= factors[symbol];
        continue;
      }
      const number = spots.indexOf(symbol);
      return {
        outcome: leHex(number, 2) + leHex(multiplier, 8),
        label: `${symbol} x${multiplier}`,
        segment,
      };
    }
    const number = await weightedIndex(stream, layout.number_weights);
    return {
      outcome: leHex(number, 2) + leHex(multiplier, 8),
      label: `${spots[number]} x${multiplier}`,
      segment,
    };
  }
  if (table.game === 'game-show-wheel') {
    // The top slot draws first (spot, then multiplier); then the wheel (game_show_wheel::play).
    const topSpot = await weightedIndex(stream, layout.top_spot_weights);
    const top = layout.top_multipliers;
    const topMultiplier = top[await weightedIndex(stream, top.map((t) => t.weight))].value;
    const segment = await belowU32(stream, segments.length);
    const spot = spots.indexOf(segments[segment]);
    return {
      outcome: leHex(segment, 2) + leHex(spot, 2),
      label: spots[spot],
      segment,
      top: { spot: spots[topSpot], multiplier: topMultiplier },
    };
  }
  throw new Error(`no verifier for ${table.game}`);
}

/** The segment (or pocket) a stored outcome shows, and its label, without replaying it. */
export function decodeOutcome(table, outcomeHex) {
  if (!outcomeHex) return null;
  const bytes = outcomeHex.match(/../g).map((b) => parseInt(b, 16));
  const le = (from, count) => bytes.slice(from, from + count)
    .reduceRight((acc, b) => acc * 256n + BigInt(b), 0n);
  if (table.game === 'roulette') return { segment: bytes[0], label: String(bytes[0]) };
  if (table.game === 'money-wheel') {
    const number = Number(le(0, 2));
    const symbol = table.spots[number];
    // The pointer stops on one of the number's segments; which one the stream does not say
    // without a replay, so the first is shown.
    return { segment: table.layout.segments.indexOf(symbol), label: `${symbol} x${le(2, 8)}` };
  }
  if (table.game === 'game-show-wheel') {
    const segment = Number(le(0, 2));
    return { segment, label: table.spots[Number(le(2, 2))] };
  }
  return { segment: null, label: outcomeHex };
}

/**
 * Verifies a recalled round: SHA-256 of the revealed seed is the commitment, and the outcome
 * follows from the seed, the table's client seed `table:<id>` and the round number as nonce.
 */
export async function verifyRound(table, round) {
  if (!round.server_seed) return { ok: false, reason: 'the seed is not revealed yet' };
  const commitment = await sha256Hex(round.server_seed);
  const commitmentOk = commitment === round.commitment.toLowerCase();
  const nonce = Number(BigInt(round.round_id) & 0xffffffffn);
  const clientSeed = `table:${table.id}`;
  const stream = await FairStream.create(round.server_seed, clientSeed, nonce);
  const drawn = await drawOutcome(table, stream);
  const outcomeOk = drawn.outcome === (round.outcome || '').toLowerCase();
  const proofOk = round.client_seed === clientSeed && round.nonce === nonce;
  let reason = 'verified';
  if (!commitmentOk) reason = 'the seed does not hash to the commitment';
  else if (!proofOk) reason = 'the round names another client seed or nonce';
  else if (!outcomeOk) reason = `the seed draws ${drawn.label}, not the recorded outcome`;
  return { ok: commitmentOk && outcomeOk && proofOk, reason, commitment, drawn, clientSeed, nonce };
}

function fromHex(text) {
  const pairs = (text || '').match(/../g) || [];
  return new Uint8Array(pairs.map((pair) => parseInt(pair, 16)));
}

/**
 * Verifies a live-studio round: the studio's Ed25519 signature (Web Crypto) of the text
 * `croupier studio result v1 table <id> round <round_id> outcome <hex>`, with the studio key
 * the round opened under. (The wheel itself is the studio's; what the signature proves is
 * that the recorded outcome is the one the studio reported for this round.)
 */
export async function verifyStudioRound(table, round) {
  if (!round.studio_signature) return { ok: false, reason: 'the studio has not reported yet' };
  const outcome = (round.outcome || '').toLowerCase();
  const message = `croupier studio result v1 table ${table.id} round ${round.round_id} outcome ${outcome}`;
  const key = await subtle.importKey('raw', fromHex(round.studio_public_key), { name: 'Ed25519' },
    false, ['verify']);
  const ok = await subtle.verify({ name: 'Ed25519' }, key, fromHex(round.studio_signature),
    encoder.encode(message));
  const drawn = decodeOutcome(table, outcome);
  return { ok, reason: ok ? 'signed by the studio' : 'the studio did not sign this outcome', drawn };
}
