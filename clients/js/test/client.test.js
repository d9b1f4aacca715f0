import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient } from '../index.js';
import { FakeBroker, claimsOf, installBrowser, tick } from '../test-support/fakes.js';

const issuer = 'https://auth.example.com';

// fakeClock makes Date.now() a settable clock for the test.
function fakeClock(t, start = 1_700_000_000_000) {
  const clock = { now: start, advance(ms) { clock.now += ms; } };
  t.mock.method(Date, 'now', () => clock.now);
  return clock;
}

// tabs creates n clients sharing the installed fakes (one browser), each
// recording its change events.
function tabs(t, broker, n, options = {}) {
  return Array.from({ length: n }, () => {
    const client = createClient({ issuer, fetch: broker.fetch, ...options });
    client.events = [];
    client.onChange((e) => client.events.push(e.type));
    t.after(() => client.close());
    return client;
  });
}

test('one tab: concurrent callers share one refresh, then the token comes from memory', async (t) => {
  installBrowser(t);
  const broker = new FakeBroker();
  const [tab] = tabs(t, broker, 1);
  const got = await Promise.all(Array.from({ length: 10 }, () => tab.getAccessToken()));
  assert.equal(broker.count('POST /auth/token'), 1);
  assert.ok(got.every((tok) => tok === got[0] && typeof tok === 'string'));
  assert.equal(await tab.getAccessToken(), got[0]);
  assert.equal(broker.count('POST /auth/token'), 1);
  assert.deepEqual(tab.events, ['signin']);
});

test('five tabs refreshing at once: one request, every tab gets its token', async (t) => {
  const env = installBrowser(t);
  const broker = new FakeBroker();
  const all = tabs(t, broker, 5);
  const got = await Promise.all(all.map((tab) => tab.getAccessToken()));
  assert.equal(broker.count('POST /auth/token'), 1, 'the tabs waiting for the lock take the broadcast token');
  assert.equal(new Set(got).size, 1);
  assert.equal(broker.maxInFlight, 1);
  assert.ok(env.locks.granted >= 1);
  for (const tab of all) assert.deepEqual(tab.events, ['signin']);
});

test('refreshes shortly before exp, one at a time across tabs', async (t) => {
  installBrowser(t);
  const clock = fakeClock(t);
  const broker = new FakeBroker({ ttlSeconds: 600 });
  const all = tabs(t, broker, 3, { refreshMarginMs: 30_000 });
  const first = await all[0].getAccessToken();
  await tick(5);
  // The broadcast reached the other tabs: no request of their own.
  for (const tab of all) assert.equal(await tab.getAccessToken(), first);
  assert.equal(broker.count('POST /auth/token'), 1);

  clock.advance(560_000); // 40 s before exp: still fresh
  assert.equal(await all[1].getAccessToken(), first);
  assert.equal(broker.count('POST /auth/token'), 1);

  clock.advance(15_000); // 25 s before exp: within the margin
  const second = await Promise.all(all.map((tab) => tab.getAccessToken()));
  assert.equal(broker.count('POST /auth/token'), 2);
  assert.ok(second.every((tok) => tok === second[0] && tok !== first));
  assert.equal(claimsOf(second[0]).iat, Math.floor(clock.now / 1000));
});

test('the margin is at most half a short lifetime', async (t) => {
  installBrowser(t);
  const clock = fakeClock(t);
  const broker = new FakeBroker({ ttlSeconds: 4 });
  const [tab] = tabs(t, broker, 1, { refreshMarginMs: 30_000 });
  const first = await tab.getAccessToken();
  clock.advance(1_500);
  assert.equal(await tab.getAccessToken(), first, 'fresh for the first half');
  clock.advance(1_000);
  assert.notEqual(await tab.getAccessToken(), first);
  assert.equal(broker.count('POST /auth/token'), 2);
});

test('fetch adds the token, and after a 401 refreshes once and retries once', async (t) => {
  installBrowser(t);
  const broker = new FakeBroker();
  const [tab, other] = tabs(t, broker, 2);
  const first = await tab.getAccessToken();
  await tick(5);
  broker.refusedTokens.add(first); // the API no longer takes it
  const res = await tab.fetch('https://api.example.com/api', { headers: { 'X-Trace': '1' } });
  assert.equal(res.status, 200);
  assert.deepEqual(
    broker.calls.filter((c) => c !== 'POST /auth/token'),
    ['GET /api', 'GET /api'],
  );
  assert.equal(broker.count('POST /auth/token'), 2);
  const [h1, h2] = broker.authHeaders;
  assert.equal(h1, `Bearer ${first}`);
  assert.notEqual(h2, h1);
  await tick(5);
  assert.equal(`Bearer ${await other.getAccessToken()}`, h2, 'the other tab got the new token too');

  // When the retry is refused too, its 401 is the answer: no loop.
  broker.refusedTokens = { has: () => true };
  const before = broker.calls.length;
  const again = await tab.fetch('https://api.example.com/api');
  assert.equal(again.status, 401);
  assert.deepEqual(broker.calls.slice(before), ['GET /api', 'POST /auth/token', 'GET /api']);
});

test('fetch keeps a Request and its headers', async (t) => {
  installBrowser(t);
  const broker = new FakeBroker();
  const [tab] = tabs(t, broker, 1);
  const req = new Request('https://api.example.com/api', { headers: { 'X-Trace': '7' } });
  const res = await tab.fetch(req);
  assert.equal(res.status, 200);
  assert.match(broker.authHeaders[0], /^Bearer /);
});

test('a refresh answered 401 signs every tab out', async (t) => {
  const env = installBrowser(t);
  const broker = new FakeBroker();
  const all = tabs(t, broker, 3);
  await Promise.all(all.map((tab) => tab.getAccessToken()));
  await tick(5);
  broker.revoked = true; // the session ends elsewhere (another device, reuse)
  broker.refusedTokens = { has: () => true };
  const res = await all[0].fetch('https://api.example.com/api');
  assert.equal(res.status, 401);
  await tick(5);
  for (const tab of all) assert.deepEqual(tab.events, ['signin', 'signout']);
  assert.ok(env.hub.posted.some((m) => m.type === 'signout'));
  // Signed out: no more requests until something changes.
  const before = broker.calls.length;
  assert.equal(await all[1].getAccessToken(), null);
  assert.equal(await all[2].getAccessToken(), null);
  assert.equal(broker.calls.length, before);
});

test('logout({all}) posts ?all=true and signs every tab out', async (t) => {
  installBrowser(t);
  const broker = new FakeBroker();
  const all = tabs(t, broker, 3);
  await Promise.all(all.map((tab) => tab.getAccessToken()));
  await tick(5);
  await all[2].logout({ all: true });
  await tick(5);
  assert.ok(broker.calls.includes('POST /auth/logout?all=true'));
  for (const tab of all) {
    assert.deepEqual(tab.events, ['signin', 'signout']);
    assert.equal(await tab.getAccessToken(), null);
  }
  await all[0].logout();
  assert.ok(broker.calls.includes('POST /auth/logout'));
});

test('a sign-in in one tab reaches the others', async (t) => {
  installBrowser(t);
  const broker = new FakeBroker();
  broker.cookie = null;
  const all = tabs(t, broker, 2);
  assert.equal(await all[0].getAccessToken(), null);
  await tick(5);
  assert.deepEqual(all[0].events, ['signout']);
  // The user signs in in a new tab (the callback sets the cookie), whose
  // client gets the first token.
  broker.cookie = 'login';
  const [fresh] = tabs(t, broker, 1);
  const tok = await fresh.getAccessToken();
  await tick(5);
  assert.deepEqual(all[0].events, ['signout', 'signin']);
  assert.equal(await all[0].getAccessToken(), tok);
  assert.deepEqual(all[1].events, ['signout', 'signin'], 'a tab that never asked learns both');
});

test('a sign-out older than the tab\'s token is ignored', async (t) => {
  const env = installBrowser(t);
  const clock = fakeClock(t);
  const broker = new FakeBroker();
  const [tab] = tabs(t, broker, 1);
  const tok = await tab.getAccessToken();
  const other = new env.hub.Channel(`broker-auth:${issuer}`);
  other.postMessage({ type: 'signout', at: clock.now - 1_000 }); // a request that left before ours
  await tick(5);
  assert.equal(await tab.getAccessToken(), tok);
  assert.deepEqual(tab.events, ['signin']);
  other.postMessage({ type: 'signout', at: clock.now + 1 });
  await tick(5);
  assert.deepEqual(tab.events, ['signin', 'signout']);
  // And a token from before that sign-out is not taken.
  other.postMessage({ type: 'token', token: tok, expiresAt: clock.now + 600_000, lifetime: 600_000, at: clock.now });
  await tick(5);
  assert.equal(await tab.getAccessToken(), null);
});

test('a lock that never comes (a tab asleep holding it): refresh anyway after lockTimeoutMs', async (t) => {
  const env = installBrowser(t);
  const broker = new FakeBroker();
  env.locks.hold(`broker-auth:${issuer}`);
  const [tab] = tabs(t, broker, 1, { lockTimeoutMs: 50 });
  const started = performance.now();
  const tok = await tab.getAccessToken();
  const waited = performance.now() - started;
  assert.equal(typeof tok, 'string');
  assert.ok(waited >= 45, `refreshed after ${waited} ms, before the lock timeout`);
  assert.ok(waited < 2_000, `waited ${waited} ms`);
  assert.equal(broker.count('POST /auth/token'), 1);
  // logout too.
  await tab.logout();
  assert.deepEqual(tab.events, ['signin', 'signout']);
});

test('without Web Locks: single flight per tab, tokens still shared', async (t) => {
  installBrowser(t, { locks: false });
  const broker = new FakeBroker();
  const all = tabs(t, broker, 3);
  await Promise.all(Array.from({ length: 5 }, () => all[0].getAccessToken()));
  assert.equal(broker.count('POST /auth/token'), 1);
  await tick(5);
  const tok = await all[0].getAccessToken();
  assert.equal(await all[1].getAccessToken(), tok);
  assert.equal(await all[2].getAccessToken(), tok);
  assert.equal(broker.count('POST /auth/token'), 1);
});

test('visibilitychange and online renew a stale token; a hidden page does not', async (t) => {
  const env = installBrowser(t);
  const clock = fakeClock(t);
  const broker = new FakeBroker({ ttlSeconds: 60 });
  const [tab] = tabs(t, broker, 1, { refreshMarginMs: 10_000 });
  await tab.getAccessToken();
  env.document.setVisibility('hidden');
  clock.advance(55_000);
  await tick(20);
  assert.equal(broker.count('POST /auth/token'), 1);
  env.document.setVisibility('visible');
  await tick(20);
  assert.equal(broker.count('POST /auth/token'), 2);
  clock.advance(55_000);
  env.window.dispatchEvent(new Event('online'));
  await tick(20);
  assert.equal(broker.count('POST /auth/token'), 3);
  // Fresh: nothing to do.
  env.window.dispatchEvent(new Event('online'));
  await tick(20);
  assert.equal(broker.count('POST /auth/token'), 3);
});

test('a broker error keeps a token that has not expired; without one it throws', async (t) => {
  installBrowser(t);
  const clock = fakeClock(t);
  const broker = new FakeBroker({ ttlSeconds: 60 });
  const [tab] = tabs(t, broker, 1, { refreshMarginMs: 10_000 });
  const tok = await tab.getAccessToken();
  clock.advance(55_000);
  broker.tokenStatus = 503;
  assert.equal(await tab.getAccessToken(), tok);
  clock.advance(10_000);
  await assert.rejects(tab.getAccessToken(), /503/);
  assert.deepEqual(tab.events, ['signin'], 'an outage is no sign-out');
});

test('login navigates to the broker', (t) => {
  const env = installBrowser(t);
  const tab = createClient({ issuer: `${issuer}/`, fetch: new FakeBroker().fetch });
  t.after(() => tab.close());
  tab.login('kakao', 'https://app.example.com/after?x=1');
  tab.login('naver');
  tab.login();
  assert.deepEqual(env.location.assigned, [
    `${issuer}/auth/login/kakao?return_to=${encodeURIComponent('https://app.example.com/after?x=1')}`,
    `${issuer}/auth/login/naver?return_to=${encodeURIComponent('https://app.example.com/page')}`,
    `${issuer}/auth/login?return_to=${encodeURIComponent('https://app.example.com/page')}`,
  ]);
  assert.throws(() => createClient({}), TypeError);
});

test('onChange returns its unsubscribe', async (t) => {
  installBrowser(t);
  const broker = new FakeBroker();
  const tab = createClient({ issuer, fetch: broker.fetch });
  t.after(() => tab.close());
  const seen = [];
  const off = tab.onChange((e) => seen.push(e));
  off();
  await tab.getAccessToken();
  assert.deepEqual(seen, []);
});
