/**
 * The console's login sessions: an idle one ends, an old one ends however busy, the CSRF token
 * is compared exactly, a reload ends the logins of users removed or whose role changed, and
 * the table is bounded.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConsoleSessions, MAX_AGE_MS } from '../../../src/admin/console-sessions.ts';

const alice = { name: 'alice', role: 'admin', via: 'basic' } as const;
const victor = { name: 'victor', role: 'viewer', via: 'basic' } as const;

describe('console sessions', () => {
  it('a session lives while used, ends when idle, and ends at its maximum age however busy', () => {
    const s = new ConsoleSessions(60_000);
    const { id } = s.create(alice, 0);
    assert.equal(s.get(id, 59_000)?.principal.via, 'cookie');
    assert.ok(s.get(id, 118_000), 'each use extends the idle window');
    assert.equal(s.get(id, 178_001), null, 'idle past 60 s');
    assert.equal(s.get(id, 178_002), null, 'and gone for good');
    const busy = s.create(alice, 0).id;
    let t = 0;
    for (; t < MAX_AGE_MS; t += 50_000) assert.ok(s.get(busy, t));
    assert.equal(s.get(busy, MAX_AGE_MS + 1), null);
    assert.equal(s.get(undefined), null);
    assert.equal(s.get('not-a-session'), null);
  });

  it('the CSRF token must be the session\'s own, exactly', () => {
    const s = new ConsoleSessions();
    const { id, csrf } = s.create(alice);
    const session = s.get(id)!;
    assert.equal(ConsoleSessions.csrfMatches(session, csrf), true);
    assert.equal(ConsoleSessions.csrfMatches(session, undefined), false);
    assert.equal(ConsoleSessions.csrfMatches(session, ''), false);
    assert.equal(ConsoleSessions.csrfMatches(session, `${csrf}x`), false);
    assert.equal(ConsoleSessions.csrfMatches(session, csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A')), false);
    assert.notEqual(s.create(alice).csrf, csrf, 'each login has its own token');
  });

  it('a reload ends the logins of removed users and of users whose role changed', () => {
    const s = new ConsoleSessions();
    const a = s.create(alice).id;
    const v = s.create(victor).id;
    s.retain([{ name: 'alice', role: 'admin' }, { name: 'victor', role: 'admin' }]);
    assert.ok(s.get(a));
    assert.equal(s.get(v), null, 'victor is an admin now: he logs in again and gets the new role');
    s.retain([]);
    assert.equal(s.get(a), null);
  });

  it('holds at most 1000 sessions: the oldest goes first', () => {
    const s = new ConsoleSessions();
    const first = s.create(alice).id;
    const second = s.create(alice).id;
    for (let i = 0; i < 999; i++) s.create(victor);
    assert.equal(s.get(first), null);
    assert.ok(s.get(second));
  });
});
