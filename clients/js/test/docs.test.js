// Runs the JavaScript snippet of docs/integrating.md ("### JavaScript
// client") as it appears there, against the fakes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { FakeBroker, installBrowser, tick } from '../test-support/fakes.js';

const heading = '### JavaScript client';

async function snippet() {
  const doc = await readFile(new URL('../../../docs/integrating.md', import.meta.url), 'utf8');
  const start = doc.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/integrating.md has no heading ${heading}`);
  const section = doc.slice(start + heading.length + 2).split(/\n#/)[0];
  const block = section.match(/```js\n([\s\S]*?)```\n/);
  assert.ok(block, `no js block under ${heading}`);
  assert.match(block[1], /from '@socialbroker\/broker-client';/);
  return block[1];
}

// load writes the snippet as a module that imports this package's
// index.js, and imports it.
async function load(t, code) {
  const dir = await mkdtemp(join(tmpdir(), 'broker-client-doc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'snippet.mjs');
  const index = pathToFileURL(new URL('../index.js', import.meta.url).pathname).href;
  await writeFile(file, code.replace("'@socialbroker/broker-client'", JSON.stringify(index)));
  return import(pathToFileURL(file).href);
}

test('the docs snippet: API calls with the token, sign-out seen, login, logout', async (t) => {
  const broker = new FakeBroker();
  const env = installBrowser(t, { fetch: broker.fetch });
  const { loadOrders, signOut } = await load(t, await snippet());

  assert.deepEqual(await loadOrders(), { ok: true, gen: 1 });
  assert.equal(env.document.body.dataset.auth, 'signin');
  assert.match(broker.authHeaders[0], /^Bearer /);

  // The session ends elsewhere: the call answers null, sends the browser
  // to the login, and the page hears the sign-out.
  broker.revoked = true;
  broker.refusedTokens = { has: () => true };
  assert.equal(await loadOrders(), null);
  await tick(5);
  assert.equal(env.document.body.dataset.auth, 'signout');
  assert.deepEqual(env.location.assigned, [
    `https://auth.example.com/auth/login/kakao?return_to=${encodeURIComponent('https://app.example.com/page')}`,
  ]);

  await signOut();
  assert.ok(broker.calls.includes('POST /auth/logout'));
});
