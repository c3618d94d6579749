import t from 'tap';
import { takeToken, type BucketState } from '../../src/access/token-bucket.ts';

const policy = { capacity: 5, windowMs: 3_600_000 };

t.test('capacity 5: five pass, the sixth is refused with the seconds until the next token', async (t) => {
  let state: BucketState | undefined;
  const remaining = [];
  for (let i = 0; i < 5; i++) {
    const result = takeToken(state, policy, 1000);
    t.ok(result.allowed, `request ${i + 1}`);
    remaining.push(result.remaining);
    state = result.state;
  }
  t.same(remaining, [4, 3, 2, 1, 0]);
  const refused = takeToken(state, policy, 1000);
  t.notOk(refused.allowed);
  t.equal(refused.retryAfterSeconds, 720, 'one token per window/capacity = 720 s');
  t.equal(refused.remaining, 0);
});

t.test('a token returns after window/capacity, not before', async (t) => {
  let state = takeToken(undefined, { capacity: 1, windowMs: 10_000 }, 0).state;
  const early = takeToken(state, { capacity: 1, windowMs: 10_000 }, 9_000);
  t.notOk(early.allowed);
  t.equal(early.retryAfterSeconds, 1);
  state = early.state;
  t.ok(takeToken(state, { capacity: 1, windowMs: 10_000 }, 10_000).allowed);
});

t.test('the bucket never holds more than its capacity', async (t) => {
  const state = { tokens: 0, updatedAtMs: 0 };
  const later = takeToken(state, policy, 100 * 3_600_000);
  t.equal(later.remaining, 4);
});

t.test('a refused request does not consume, and a clock going back does not mint tokens', async (t) => {
  const empty = { tokens: 0.5, updatedAtMs: 10_000 };
  const refused = takeToken(empty, policy, 5_000);
  t.notOk(refused.allowed);
  t.equal(refused.state.tokens, 0.5);
});
