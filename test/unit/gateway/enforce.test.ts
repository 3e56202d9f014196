/**
 * Enforcement without sockets: the plan for every action in both forwarding modes (the
 * action table of the design), the replies it takes from the profile, and carrying a plan
 * out against fake legs (who is told what, in which order).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { carryOut, enforcementFor, REPLY } from '../../../src/gateway/enforce.ts';
import type { AbandonHow } from '../../../src/gateway/upstream-leg.ts';
import { ACTIONS, type Action } from '../../../src/policy/actions.ts';
import { BUILTIN_PROFILE, type Decision } from '../../../src/policy/decide.ts';

const decision = (action: Action): Decision => ({
  action,
  rule: 'r1',
  profile: 'p',
  profiles: {} as Decision['profiles'],
  reason: 'test',
  deciding: null,
  threat: action === 'allow' ? '' : 'Eicar-Test-Signature',
  replies: BUILTIN_PROFILE.replies,
  verdicts: [],
  quarantine: false,
});

// action: client fate, upstream fate in store-and-forward, in cut-through, reply code
const TABLE: Record<Action, [string, string, string, number | null]> = {
  allow: ['continue', 'deliver', 'deliver', null],
  alert: ['continue', 'deliver', 'deliver', null],
  block: ['reset', 'quit', 'reset', 541],
  reject: ['continue', 'rset', 'reset', 550],
  tempfail: ['continue', 'rset', 'reset', 451],
  drop: ['close', 'quit', 'reset', null],
  'reset-client': ['reset', 'quit', 'reset', null],
  'reset-server': ['close', 'reset', 'reset', null],
  'reset-both': ['reset', 'reset', 'reset', null],
};

describe('enforcementFor: every action in both modes', () => {
  it('covers every action', () => assert.deepEqual(Object.keys(TABLE).sort(), [...ACTIONS].sort()));
  for (const action of ACTIONS) {
    it(action, () => {
      const [client, saf, ct, code] = TABLE[action];
      const a = enforcementFor(decision(action), 'store-and-forward', 'S1.1');
      const b = enforcementFor(decision(action), 'cut-through', 'S1.1');
      assert.equal(a.client, client);
      assert.equal(b.client, client);
      assert.equal(a.upstream, saf);
      assert.equal(b.upstream, ct);
      assert.equal(a.reply?.code ?? null, code);
      assert.deepEqual(a.reply, b.reply);
    });
  }
  it('the block reply is 541 in the receiving server\'s words, naming the threat and the log id', () => {
    const r = enforcementFor(decision('block'), 'cut-through', 'ABC.3').reply!;
    assert.match(r.text, /^5\.4\.1 /);
    assert.match(r.text, /Eicar-Test-Signature/);
    assert.match(r.text, /ABC\.3/);
  });
});

class FakeLegs {
  readonly log: string[] = [];
  client = {
    flushedAndRead: async () => void this.log.push('client flushed'),
    reset: () => void this.log.push('client reset'),
    silence: () => void this.log.push('client silenced'),
    destroy: () => void this.log.push('client closed'),
  };
  upstream = { abandon: async (how: AbandonHow) => void this.log.push(`upstream ${how}`) };
}

describe('carryOut', () => {
  const run = async (action: Action, mode: 'store-and-forward' | 'cut-through') => {
    const legs = new FakeLegs();
    const end = await carryOut(enforcementFor(decision(action), mode, 'S.1'), legs.client, legs.upstream);
    return { end, log: legs.log };
  };
  it('block: upstream first (QUIT, or RST in cut-through), then the 541 flushed and the client reset', async () => {
    assert.deepEqual(await run('block', 'store-and-forward'), { end: 'closed', log: ['upstream quit', 'client flushed', 'client reset'] });
    assert.deepEqual(await run('block', 'cut-through'), { end: 'closed', log: ['upstream reset', 'client flushed', 'client reset'] });
  });
  it('reject and tempfail: the session goes on (RSET, or RST and a new connection)', async () => {
    assert.deepEqual(await run('reject', 'store-and-forward'), { end: 'continue', log: ['upstream rset'] });
    assert.deepEqual(await run('tempfail', 'cut-through'), { end: 'continue', log: ['upstream reset'] });
  });
  it('drop: silence, then close; reset-client: no reply to flush', async () => {
    assert.deepEqual(await run('drop', 'store-and-forward'), { end: 'closed', log: ['upstream quit', 'client silenced', 'client closed'] });
    assert.deepEqual(await run('reset-client', 'store-and-forward'), { end: 'closed', log: ['upstream quit', 'client reset'] });
    assert.deepEqual(await run('reset-server', 'store-and-forward'), { end: 'closed', log: ['upstream reset', 'client silenced', 'client closed'] });
  });
});

describe('the reply table', () => {
  it('every fixed reply has a code and an enhanced status or 354 text', () => {
    for (const [name, r] of Object.entries(REPLY)) {
      const x = typeof r === 'function' ? (r as (...a: unknown[]) => { code: number; text: string })('h', 'x') : r;
      assert.ok(x.code >= 200 && x.code < 600, name);
      if (x.code !== 354) assert.match(x.text, /^[245]\.\d{1,3}\.\d{1,3} /, name);
    }
  });
});
