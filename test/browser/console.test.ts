/**
 * The admin console in a real browser: Debian's Chromium driven by playwright-core, against
 * `smtpwall start` with the admin plane on. An admin logs in, an EICAR message sent through the
 * gateway appears on the dashboard and in the threat log without a reload, its details explain
 * the block, the pcap downloaded from the page opens in tshark with the 541 and the reset, the
 * quarantined message is released from the page and reaches the receiving server; a viewer
 * finds no way to release. With UPDATE_SCREENSHOTS=1 the dashboard and the details are saved
 * as docs/console-*.png (the README shows them).
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { EICAR_MSG, type Running, send, startAdminGateway } from '../helpers/admin-gateway.ts';
import { startUpstream, type UpstreamPeer } from '../helpers/peers.ts';
import { hasCommand } from '../helpers/tools.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? join(import.meta.dirname, '../../docs') : null;
/** Playwright waits for the page's own events (a row appearing); this only bounds a failure. */
const UI_MS = 20_000;

describe('admin console in Chromium', { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (Debian package chromium; .ci/run installs it)` }, () => {
  let up: UpstreamPeer;
  let gw: Running;
  let browser: Browser;
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-console-'));

  before(async () => {
    up = await startUpstream();
    gw = await startAdminGateway(dir, up.port, 1);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // A fresh profile per launch (playwright's default), nothing fetched from the network.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(user: string, password: string): Promise<Page> {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const problems: string[] = [];
    // Script errors and CSP violations; an HTTP status the page handles (a 404 it explains) is not one.
    page.on('console', (m) => m.type() === 'error' && !/^Failed to load resource/.test(m.text()) && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    (page as Page & { problems: string[] }).problems = problems;
    await page.goto(gw.admin);
    await page.fill('#login-user', user);
    await page.fill('#login-password', password);
    await page.click('#login-submit');
    await page.waitForSelector('#view[data-view="dashboard"] #recent-threats', { timeout: UI_MS });
    return page;
  }

  it('an admin sees a blocked message arrive live, opens it, downloads its pcap and releases it from quarantine', async () => {
    const page = await login('alice', 'alice-secret');
    assert.match((await page.textContent('#whoami')) ?? '', /alice \(admin\)/);
    // A wrong password first would lock nothing: the login form says why.
    assert.equal(await page.locator('#recent-threats tbody tr').count(), 0, 'nothing blocked yet');

    const reply = await send(gw.smtp, EICAR_MSG);
    assert.match(reply, /^541 5\.4\.1/);
    const id = /id: (\S+)/.exec(reply)![1]!.replace(/\)$/, '');
    // The dashboard polls: the row appears without a reload, and the figures count it.
    const row = page.locator(`#recent-threats tbody tr[data-key="${id}"]`);
    await row.waitFor({ timeout: UI_MS });
    assert.match((await row.textContent()) ?? '', /Eicar/i);
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector('#card-stopped .figure')?.textContent === '1', undefined, { timeout: UI_MS });
    assert.ok((await page.locator('#chart-traffic svg rect.b-block').count()) >= 1, 'the chart has a bar for the block');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-dashboard.png'), fullPage: true });

    // The threat log (its own live view), then the row's details.
    await page.click('header nav a[data-view="threats"]');
    const logRow = page.locator(`#threats-table tbody tr[data-key="${id}"]`);
    await logRow.waitFor({ timeout: UI_MS });
    assert.match((await logRow.getAttribute('class')) ?? '', /row-block/, 'coloured by action');
    await logRow.click();
    await page.waitForSelector('#explanation', { timeout: UI_MS });
    const explanation = (await page.textContent('#explanation')) ?? '';
    assert.match(explanation, /clamav|signature|Eicar/i);
    assert.match(explanation, /decided block/);
    assert.match(explanation, /541 5\.4\.1/);
    await page.waitForSelector('#transcript pre', { timeout: UI_MS });
    assert.match((await page.textContent('#transcript pre')) ?? '', />client\s+541 5\.4\.1/);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-details.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: UI_MS }), page.click('#download-pcap')]);
    const pcap = join(dir, 'download.pcap');
    await download.saveAs(pcap);
    if (hasCommand('tshark')) {
      const smtp = execFileSync('tshark', ['-n', '-r', pcap, '-d', `tcp.port==${gw.smtp},smtp`, '-Y', 'smtp.response.code == 541'], { encoding: 'utf8' });
      assert.match(smtp, /541/);
      const rst = execFileSync('tshark', ['-n', '-r', pcap, '-Y', 'tcp.flags.reset == 1'], { encoding: 'utf8' });
      assert.ok(rst.trim().split('\n').filter(Boolean).length >= 1, 'the reset is in the capture as an RST segment');
    }

    // Quarantine: pick the entry, release it, and the receiving server gets it.
    const before = up.messages.length;
    await page.click('header nav a[data-view="quarantine"]');
    await page.locator(`#quarantine-table input.pick[data-id="${id}"]`).check({ timeout: UI_MS });
    page.once('dialog', (d) => void d.accept());
    await page.click('#release-selected');
    await page.waitForFunction((x) => ((globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector('#notice')?.textContent ?? '').includes(`${x}: released`), id, { timeout: UI_MS });
    assert.equal(up.messages.length, before + 1, 'the released message reached the upstream');
    assert.match(up.messages.at(-1)!.data.toString('latin1'), /Message-ID: <t1@example.org>/, 'the quarantined message itself');
    assert.deepEqual((page as Page & { problems: string[] }).problems, [], 'no script error and no CSP violation on the page');
    await page.context().close();
  });

  it('a viewer sees the quarantine and the threat log, and finds no way to release, delete, set or reload', async () => {
    const page = await login('victor', 'victor-secret');
    await page.click('header nav a[data-view="quarantine"]');
    await page.waitForSelector('#quarantine-table tbody tr', { timeout: UI_MS }); // the page rendered the entry
    assert.equal(await page.locator('#release-selected, #delete-selected, input.pick').count(), 0);
    await page.click('header nav a[data-view="config"]');
    await page.waitForSelector('#config-effective', { timeout: UI_MS });
    assert.equal(await page.locator('#config-reload').count(), 0);
    assert.doesNotMatch((await page.textContent('#config-effective')) ?? '', /scrypt\$/, 'hashes are masked');
    // Checking a draft changes nothing: a viewer may, and sees the error with its line.
    await page.fill('#config-draft', 'listeners:\n  - { name: x, listen: "nowhere" }\n');
    await page.click('#config-check');
    await page.waitForSelector('#config-check-result li', { timeout: UI_MS });
    assert.match((await page.textContent('#config-check-result')) ?? '', /draft:\d+/);
    await page.goto(`${gw.admin}/#/verdicts/${'a'.repeat(64)}`);
    await page.waitForSelector('#verdict-detail', { timeout: UI_MS });
    assert.equal(await page.locator('#verdict-set').count(), 0);
    assert.deepEqual((page as Page & { problems: string[] }).problems, []);
    await page.context().close();
  });
});
