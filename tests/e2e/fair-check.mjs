// The browser's verifier (crates/server/ui/fair.js) against `croupier fair` for known seeds:
// same commitment, same integers from the same stream, same roulette pocket. Run:
//   node tests/e2e/fair-check.mjs <croupier binary>
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { sha256Hex, FairStream, belowU32 } from '../../crates/server/ui/fair.js';

const binary = process.argv[2];
if (!binary) throw new Error('usage: fair-check.mjs <croupier binary>');
const croupier = (...args) => execFileSync(binary, ['fair', ...args], { encoding: 'utf8' });

const seeds = [
  '3b1f0c4a9e2d7f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718',
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];
for (const seed of seeds) {
  const commitment = croupier('commit', '--server-seed', seed).trim();
  assert.equal(await sha256Hex(seed), commitment, 'commitment');
  for (const [clientSeed, nonce] of [['table:1', 1], ['table:3', 4294967295]]) {
    for (const range of [37, 54, 1000, 82, 3]) {
      const cli = croupier('ints', '--server-seed', seed, '--client-seed', clientSeed,
        '--nonce', String(nonce), '--range', String(range), '--count', '40')
        .trim().split('\n').map(Number);
      const stream = await FairStream.create(seed, clientSeed, nonce);
      const ours = [];
      for (let i = 0; i < 40; i++) ours.push(await belowU32(stream, range));
      assert.deepEqual(ours, cli, `ints range ${range} ${clientSeed} ${nonce}`);
    }
    const verified = croupier('verify', '--server-seed', seed, '--client-seed', clientSeed,
      '--nonce', String(nonce), '--commitment', commitment, '--game', 'roulette');
    const pocket = Number(/pocket (\d+)/.exec(verified)[1]);
    const stream = await FairStream.create(seed, clientSeed, nonce);
    assert.equal(await belowU32(stream, 37), pocket, 'roulette pocket');
  }
}
console.log('fair.js agrees with croupier fair');
