import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GATEWAY_NODE_FLAGS, missingNodeFlags, withGatewayFlags } from '../../../src/app/node-flags.ts';

const ROOT = join(import.meta.dirname, '../../..');
const flags = GATEWAY_NODE_FLAGS.join(' ');

test('the shebang, npm start and the systemd unit start node with the gateway flags', () => {
  const shebang = readFileSync(join(ROOT, 'bin/smtpwall.js'), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${flags}`);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start!, new RegExp(`^node ${flags} bin/smtpwall\\.js start `));
  const unit = readFileSync(join(ROOT, 'contrib/smtpwall.service'), 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=/usr/bin/node ${flags} /opt/smtpwall/bin/smtpwall\\.js start `, 'm'));
});

test('node accepts the flags, and the shebang runs the command', () => {
  const r = spawnSync(process.execPath, [...GATEWAY_NODE_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'ok');
  const bin = spawnSync(join(ROOT, 'bin/smtpwall.js'), ['--version'], { encoding: 'utf8' });
  assert.equal(bin.status, 0, bin.stderr);
  assert.match(bin.stdout, /^smtpwall /);
});

test('missing flags are named; the workers get them added once', () => {
  assert.deepEqual(missingNodeFlags([]), [...GATEWAY_NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--inspect', ...GATEWAY_NODE_FLAGS]), []);
  assert.deepEqual(withGatewayFlags(['--import', 'x']), ['--import', 'x', ...GATEWAY_NODE_FLAGS]);
  assert.deepEqual(withGatewayFlags([...GATEWAY_NODE_FLAGS]), [...GATEWAY_NODE_FLAGS]);
});
