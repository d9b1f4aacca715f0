// Fakes of what the client uses from a browser: a broker behind fetch
// (with the browser's one shared refresh cookie), Web Locks,
// BroadcastChannel, document and location. Several clients created with the
// same fakes installed behave like tabs of one browser.

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

/** A macrotask later: lets queued messages and timers run. */
export const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** claimsOf decodes a fake token's payload. */
export function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/**
 * FakeBroker answers POST /auth/token, POST /auth/logout and GET /api with
 * the browser's cookie, like the real broker: each refresh rotates the
 * cookie; an API call accepts only unexpired tokens of a live session.
 */
export class FakeBroker {
  constructor({ issuer = 'https://auth.example.com', ttlSeconds = 600, now = () => Date.now(), delayMs = 5 } = {}) {
    this.issuer = issuer;
    this.ttl = ttlSeconds;
    this.now = now;
    this.delayMs = delayMs;
    this.cookie = 'gen-0'; // the browser's refresh cookie (null: none)
    this.generation = 0;
    this.revoked = false;
    this.calls = []; // "POST /auth/token", ...
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.tokenStatus = null; // force a status for /auth/token (e.g. 500)
    this.refusedTokens = new Set(); // tokens /api refuses as if revoked
    this.authHeaders = [];
    this.fetch = this.fetch.bind(this);
  }

  count(what) {
    return this.calls.filter((c) => c === what).length;
  }

  mint() {
    const iat = Math.floor(this.now() / 1000);
    return `${b64url({ alg: 'RS256', typ: 'at+jwt' })}.${b64url({ iat, exp: iat + this.ttl, gen: this.generation })}.sig`;
  }

  async fetch(input, init = {}) {
    const url = new URL(typeof input === 'string' ? input : input.url);
    const method = init.method ?? (typeof input === 'string' ? 'GET' : input.method);
    const what = `${method} ${url.pathname}${url.search}`;
    this.calls.push(what);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await tick(this.delayMs);
      if (what === 'POST /auth/token') {
        if (init.credentials !== 'include') throw new Error('POST /auth/token without credentials: include');
        if (this.tokenStatus) return new Response('{}', { status: this.tokenStatus });
        if (!this.cookie || this.revoked) return Response.json({ error: 'invalid_grant' }, { status: 401 });
        this.generation++;
        this.cookie = `gen-${this.generation}`;
        return Response.json({ access_token: this.mint(), token_type: 'Bearer', expires_in: this.ttl });
      }
      if (url.pathname === '/auth/logout' && method === 'POST') {
        this.revoked = true;
        this.cookie = null;
        return new Response(null, { status: 204 });
      }
      if (url.host === 'api.example.com') {
        const auth = new Headers(init.headers).get('Authorization');
        this.authHeaders.push(auth);
        const tok = auth?.replace(/^Bearer /, '');
        if (!tok || this.revoked || this.refusedTokens.has(tok) || claimsOf(tok).exp * 1000 <= this.now()) {
          return Response.json({ error: 'invalid_token' }, { status: 401 });
        }
        return Response.json({ ok: true, gen: claimsOf(tok).gen });
      }
      return new Response('not found', { status: 404 });
    } finally {
      this.inFlight--;
    }
  }
}

/** FakeLocks is navigator.locks: exclusive locks granted in request order. */
export class FakeLocks {
  constructor() {
    this.queues = new Map();
    this.granted = 0;
  }

  request(name, options, callback) {
    const queue = this.queues.get(name) ?? [];
    this.queues.set(name, queue);
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      const signal = options?.signal;
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', () => {
        const i = queue.indexOf(entry);
        if (i > 0) {
          // still waiting (index 0 holds the lock): withdraw
          queue.splice(i, 1);
          reject(signal.reason);
        }
      });
      queue.push(entry);
      if (queue.length === 1) this.run(name);
    });
  }

  run(name) {
    const queue = this.queues.get(name);
    const entry = queue[0];
    if (!entry) return;
    this.granted++;
    Promise.resolve()
      .then(() => entry.callback({ name, mode: 'exclusive' }))
      .then(entry.resolve, entry.reject)
      .finally(() => {
        queue.shift();
        this.run(name);
      });
  }

  /** hold takes the lock and never gives it back (a tab frozen by sleep). */
  hold(name) {
    this.request(name, {}, () => new Promise(() => {}));
  }
}

/** FakeBroadcastHub makes BroadcastChannel classes whose instances share messages. */
export class FakeBroadcastHub {
  constructor() {
    const hub = this;
    this.channels = new Set();
    this.posted = [];
    this.Channel = class extends EventTarget {
      constructor(name) {
        super();
        this.name = name;
        hub.channels.add(this);
      }

      postMessage(data) {
        hub.posted.push(data);
        for (const other of hub.channels) {
          if (other === this || other.name !== this.name) continue;
          const copy = structuredClone(data);
          setTimeout(() => {
            if (hub.channels.has(other)) other.dispatchEvent(new MessageEvent('message', { data: copy }));
          }, 0);
        }
      }

      close() {
        hub.channels.delete(this);
      }
    };
  }
}

/** FakeDocument has a visibilityState and its visibilitychange event. */
export class FakeDocument extends EventTarget {
  constructor() {
    super();
    this.visibilityState = 'visible';
    this.body = { dataset: {} };
  }

  setVisibility(state) {
    this.visibilityState = state;
    this.dispatchEvent(new Event('visibilitychange'));
  }
}

/**
 * installBrowser puts the fakes on globalThis (navigator.locks,
 * BroadcastChannel, document, location) for the test t and restores the
 * originals after it. locks: false leaves Web Locks out; fetch replaces
 * globalThis.fetch.
 */
export function installBrowser(t, { locks = true, fetch } = {}) {
  const env = {
    locks: locks ? new FakeLocks() : null,
    hub: new FakeBroadcastHub(),
    document: new FakeDocument(),
    location: { href: 'https://app.example.com/page', assigned: [], assign(u) { this.assigned.push(u); } },
    window: new EventTarget(), // window's own events (online)
  };
  const names = ['navigator', 'BroadcastChannel', 'document', 'location', 'addEventListener', 'removeEventListener', 'fetch'];
  const saved = names.map((n) => Object.getOwnPropertyDescriptor(globalThis, n));
  const define = (n, value) => Object.defineProperty(globalThis, n, { value, configurable: true, writable: true });
  define('navigator', env.locks ? { locks: env.locks } : {});
  define('BroadcastChannel', env.hub.Channel);
  define('document', env.document);
  define('location', env.location);
  define('addEventListener', env.window.addEventListener.bind(env.window));
  define('removeEventListener', env.window.removeEventListener.bind(env.window));
  if (fetch) define('fetch', fetch);
  t.after(() => {
    for (const ch of [...env.hub.channels]) ch.close();
    names.forEach((n, i) => {
      if (saved[i]) Object.defineProperty(globalThis, n, saved[i]);
      else delete globalThis[n];
    });
  });
  return env;
}
