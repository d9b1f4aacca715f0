// Browser client for the social-login broker: access tokens in memory, one
// refresh at a time across every tab of the origin, sign-in and sign-out
// shared between tabs. No dependencies; an ES module.
//
// The refresh token never reaches this code: it is the broker's HttpOnly
// refresh_token cookie, which POST {issuer}/auth/token rotates. All tabs of
// a browser share that cookie, so two tabs refreshing at once present the
// same token. The broker answers a replay within reuse_grace with the same
// child, but a tab presenting an older generation after that revokes the
// session (theft detection). Hence: a Web Lock serialises the refreshes of
// all tabs, and a BroadcastChannel hands the fresh access token (and
// sign-out) to the others, so usually one tab refreshes for all of them.

const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
const DEFAULT_REFRESH_MARGIN_MS = 30_000;

/**
 * @param {import('./index.js').ClientOptions} options
 * @returns {import('./index.js').Client}
 */
export function createClient(options) {
  const {
    issuer: rawIssuer,
    fetch: fetchOption,
    lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS,
    refreshMarginMs = DEFAULT_REFRESH_MARGIN_MS,
  } = options ?? {};
  if (typeof rawIssuer !== 'string' || rawIssuer === '') {
    throw new TypeError('createClient: issuer is required');
  }
  const issuer = rawIssuer.replace(/\/+$/, '');
  const send = fetchOption ?? ((input, init) => globalThis.fetch(input, init));
  const name = `broker-auth:${issuer}`;
  const locks = globalThis.navigator?.locks;
  const channel = typeof globalThis.BroadcastChannel === 'function' ? new globalThis.BroadcastChannel(name) : null;

  // State of this tab. expiresAt and the request times are on this
  // machine's clock, which all tabs share.
  let token = null; // the access token, or null
  let expiresAt = 0; // when token expires
  let lifetime = 0; // token's whole lifetime, ms
  let tokenAt = 0; // when the request that got token left
  let signoutAt = -Infinity; // when the request that revealed the last sign-out left
  let signedIn; // undefined until known, then true or false
  let pending = null; // the refresh this tab is running (single flight)
  let closed = false;
  const listeners = new Set();

  const now = () => Date.now();
  const margin = () => Math.min(refreshMarginMs, lifetime / 2);
  const fresh = () => token !== null && now() < expiresAt - margin();
  // usable: a fresh token other than the one a caller found wanting.
  const usable = (stale) => fresh() && token !== stale;

  function emit(type) {
    for (const listener of [...listeners]) {
      try {
        listener({ type });
      } catch (err) {
        if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
        else console.error(err);
      }
    }
  }

  function post(message) {
    try {
      channel?.postMessage(message);
    } catch {
      // a closed channel: the other tabs learn it on their own next refresh
    }
  }

  function setToken(t, exp, life, at) {
    token = t;
    expiresAt = exp;
    lifetime = life;
    tokenAt = at;
    if (signedIn !== true) {
      signedIn = true;
      emit('signin');
    }
  }

  // signOut forgets the token. at is when the request that revealed the
  // sign-out left; tell broadcasts it to the other tabs.
  function signOut(at, tell) {
    signoutAt = Math.max(signoutAt, at);
    token = null;
    expiresAt = 0;
    if (tell) post({ type: 'signout', at });
    if (signedIn !== false) {
      signedIn = false;
      emit('signout');
    }
  }

  channel?.addEventListener('message', (event) => {
    const m = event.data;
    if (closed || !m || typeof m !== 'object') return;
    if (m.type === 'token' && typeof m.token === 'string' && typeof m.expiresAt === 'number') {
      // A token from a request that left before a sign-out we know of
      // belongs to the session that ended.
      if (m.at < signoutAt) return;
      if (token === null || m.expiresAt > expiresAt) {
        setToken(m.token, m.expiresAt, typeof m.lifetime === 'number' ? m.lifetime : m.expiresAt - now(), m.at);
      }
    } else if (m.type === 'signout' && typeof m.at === 'number') {
      // Our token came from a request that left after that one: it was
      // made with a newer cookie (a sign-in since), so it stands.
      if (token !== null && tokenAt > m.at) return;
      signOut(m.at, false);
    }
  });

  // refreshNow asks the broker for a token with the refresh cookie.
  async function refreshNow() {
    const at = now();
    const res = await send(`${issuer}/auth/token`, { method: 'POST', credentials: 'include' });
    if (res.status === 401) {
      // invalid_grant: the cookie is missing, expired, revoked or unknown;
      // the cookie is the whole browser's, so every tab is signed out.
      signOut(at, true);
      return null;
    }
    if (!res.ok) throw new Error(`broker: POST /auth/token answered ${res.status}`);
    const body = await res.json();
    if (typeof body?.access_token !== 'string' || body.access_token === '') {
      throw new Error('broker: POST /auth/token answered no access_token');
    }
    const life = lifetimeOf(body.access_token, body.expires_in, at);
    // Counted from when the request left, so never later than the real
    // expiry, whatever this machine's clock says.
    setToken(body.access_token, at + life, life, at);
    post({ type: 'token', token, expiresAt, lifetime, at });
    return token;
  }

  // exclusive runs fn holding the origin-wide lock. Locks can hang: a tab
  // frozen by sleep may hold one for long. After lockTimeoutMs of waiting
  // fn runs anyway; a tab that refreshes at the same moment presents the
  // same cookie, which the broker's reuse_grace covers.
  async function exclusive(fn) {
    if (typeof locks?.request !== 'function') {
      // No Web Locks: this tab runs one refresh at a time (pending), the
      // BroadcastChannel still shares its token, and serialisation across
      // tabs relies on the broker's reuse_grace alone.
      return fn();
    }
    const abort = new AbortController();
    let granted = false;
    const timer = setTimeout(() => abort.abort(), lockTimeoutMs);
    try {
      return await locks.request(name, { signal: abort.signal }, async () => {
        granted = true;
        clearTimeout(timer);
        // Let a message that the previous holder posted before releasing
        // the lock arrive first.
        await new Promise((resolve) => setTimeout(resolve, 0));
        return fn();
      });
    } catch (err) {
      if (granted || !abort.signal.aborted) throw err;
      return fn();
    } finally {
      clearTimeout(timer);
    }
  }

  // refresh returns a token other than stale (the one the caller found
  // expiring or refused), refreshing if no other tab has sent one yet.
  // Callers in this tab share one refresh; one that joined a refresh which
  // ended with its own stale token (another caller started it, content
  // with that token) runs one more.
  async function refresh(stale) {
    for (let round = 0; ; round++) {
      if (usable(stale)) return token;
      pending ??= exclusive(() => (usable(stale) ? token : refreshNow())).finally(() => {
        pending = null;
      });
      const got = await pending;
      if (got === null || got !== stale || round === 1) return got;
    }
  }

  async function getAccessToken() {
    if (fresh()) return token;
    // Signed out: no request until a sign-in is broadcast or the page
    // comes back (visibilitychange, online).
    if (signedIn === false) return null;
    try {
      return await refresh(token);
    } catch (err) {
      // The broker is unreachable: a token that has not expired yet still
      // serves.
      if (token !== null && now() < expiresAt) return token;
      throw err;
    }
  }

  async function authFetch(input, init = {}) {
    const attempt = (t) => {
      const isRequest = typeof Request === 'function' && input instanceof Request;
      const headers = new Headers(init.headers ?? (isRequest ? input.headers : undefined));
      if (t) headers.set('Authorization', `Bearer ${t}`);
      return send(isRequest ? input.clone() : input, { ...init, headers });
    };
    const first = await getAccessToken();
    const res = await attempt(first);
    if (res.status !== 401 || first === null) return res;
    let next;
    try {
      next = await refresh(first);
    } catch {
      return res;
    }
    if (!next) return res; // signed out
    await res.body?.cancel();
    return attempt(next);
  }

  function login(provider, returnTo = globalThis.location?.href) {
    const path = provider ? `/auth/login/${encodeURIComponent(provider)}` : '/auth/login';
    const query = returnTo ? `?return_to=${encodeURIComponent(returnTo)}` : '';
    globalThis.location.assign(`${issuer}${path}${query}`);
  }

  async function logout({ all = false } = {}) {
    await exclusive(async () => {
      const at = now();
      const res = await send(`${issuer}/auth/logout${all ? '?all=true' : ''}`, {
        method: 'POST',
        credentials: 'include',
      });
      if (!res.ok && res.status !== 401) throw new Error(`broker: POST /auth/logout answered ${res.status}`);
      signOut(at, true);
    });
  }

  // When the page comes back (a tab shown again, the network back), a
  // stale token is renewed before the app asks for it; a signed-out tab
  // checks whether the browser has signed in meanwhile.
  const wake = () => {
    if (closed || signedIn === undefined || fresh()) return;
    if (globalThis.document?.visibilityState === 'hidden') return;
    refresh(token).catch(() => {});
  };
  const onVisibility = () => {
    if (globalThis.document?.visibilityState === 'visible') wake();
  };
  globalThis.document?.addEventListener?.('visibilitychange', onVisibility);
  globalThis.addEventListener?.('online', wake);

  return {
    getAccessToken,
    fetch: authFetch,
    login,
    logout,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      listeners.clear();
      channel?.close();
      globalThis.document?.removeEventListener?.('visibilitychange', onVisibility);
      globalThis.removeEventListener?.('online', wake);
    },
  };
}

// lifetimeOf returns how long a token lives, in ms, read from its payload
// (not verified: the broker just sent it): exp - iat, which no clock
// difference between this machine and the broker can skew; else exp
// against this clock (at: when the request left); else expires_in.
function lifetimeOf(jwt, expiresIn, at) {
  let claims;
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
    claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch {
    claims = null; // not a JWT we can read
  }
  if (typeof claims?.exp === 'number') {
    if (typeof claims.iat === 'number' && claims.exp > claims.iat) return (claims.exp - claims.iat) * 1000;
    if (claims.exp * 1000 > at) return claims.exp * 1000 - at;
  }
  if (typeof expiresIn === 'number' && expiresIn > 0) return expiresIn * 1000;
  throw new Error('broker: cannot tell when the access token expires');
}
