// A player's bets on one table. While the table's bet socket is open, a bet is one frame on a
// connection already made; otherwise it is `POST /v1/tables/{id}/bets`. Both take the same
// body and answer the same fields, and a `bet_id` retried on either answers the original
// result, so a bet whose answer was lost on the socket may be retried over HTTP safely.

import { api, ApiError } from './api.js';

/** The bet socket's subprotocol (the token goes next to it: browsers cannot set headers). */
const BET_PROTOCOL = 'croupier.bets.v1';
/** A bet unanswered this long on the socket is reported as an unknown outcome. */
const ANSWER_TIMEOUT_MS = 10_000;
/** After the socket drops, wait this long before opening another (HTTP carries bets meanwhile). */
const RECONNECT_MS = 5_000;
/** The close code the node sends once the session has ended (RFC 6455 policy violation). */
const CLOSE_POLICY = 1008;

export class BetLine {
  constructor(tableId, token) {
    Object.assign(this, { tableId, token });
    this.pending = new Map();
    this.socket = null;
    this.stopped = false;
    this.retryTimer = null;
    this.connect();
  }

  connect() {
    if (this.stopped || !this.token) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/v1/tables/${this.tableId}/bet-socket`;
    let socket;
    try {
      socket = new WebSocket(url, [BET_PROTOCOL, `bearer.${this.token}`]);
    } catch (error) {
      return; // no WebSocket here: every bet goes over HTTP
    }
    this.socket = socket;
    socket.onmessage = (event) => this.answer(event.data);
    socket.onclose = (event) => {
      if (this.socket === socket) this.socket = null;
      this.failPending('the connection closed before the answer arrived');
      // 1008: the session ended; the refusal already said so, and a new socket would be refused.
      if (!this.stopped && event.code !== CLOSE_POLICY) {
        this.retryTimer = setTimeout(() => this.connect(), RECONNECT_MS);
      }
    };
  }

  /** Places a bet; answers the accepted bet's fields or throws an ApiError, as `api` does. */
  place(body) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || this.pending.has(body.bet_id)) {
      return api(`/v1/tables/${this.tableId}/bets`, { method: 'POST', token: this.token, body });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(body.bet_id);
        reject(new ApiError(0, { error: 'outcome_unknown', message: 'no answer in time' }));
      }, ANSWER_TIMEOUT_MS);
      this.pending.set(body.bet_id, { resolve, reject, timer });
      socket.send(JSON.stringify(body));
    });
  }

  answer(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      return;
    }
    const waiting = this.pending.get(message.bet_id);
    if (!waiting) return;
    this.pending.delete(message.bet_id);
    clearTimeout(waiting.timer);
    if (message.type === 'bet_accepted') {
      waiting.resolve(message);
    } else {
      waiting.reject(new ApiError(message.status || 0, message));
    }
  }

  /** Bets sent and not answered: their outcome is unknown, and the same bet_id may be retried. */
  failPending(reason) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ApiError(0, { error: 'outcome_unknown', message: reason }));
    }
    this.pending.clear();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000);
    this.failPending('the table was left');
  }
}
