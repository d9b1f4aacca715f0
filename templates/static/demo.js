// Demo frontend for the broker: get an access token through the JavaScript
// client (clients/js/index.js, served as /static/broker-client.js), verify it in the
// browser against the JWKS, then call /auth/me with it. An ES module.
import { createClient } from '/static/broker-client.js';

const $ = (id) => document.getElementById(id);

// The broker serves this page, so its issuer is this origin.
const auth = createClient({ issuer: location.origin });
let shown = false; // a signed-in state is on screen
let loading = false;

function show(state, text) {
  const s = $('status');
  s.textContent = text;
  s.dataset.state = state; // ok | bad | idle (styling only)
}

function reset() {
  $('claims').textContent = '';
  $('profile').textContent = '';
  $('sessions').replaceChildren();
}

function signedOut(text) {
  shown = false;
  reset();
  show('idle', text);
  $('login-box').hidden = false;
}

// base64url (no padding, -_ alphabet) -> Uint8Array.
function b64urlBytes(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('bad base64url');
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const b64urlJSON = (s) => JSON.parse(new TextDecoder().decode(b64urlBytes(s)));

// verify returns the claims of a valid token, or throws Error(reason).
async function verify(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWS compact token');
  const [h, p, sig] = parts;
  let header, claims;
  try {
    header = b64urlJSON(h);
    claims = b64urlJSON(p);
  } catch {
    throw new Error('malformed header or payload');
  }
  if (header.alg !== 'RS256') throw new Error(`unexpected alg ${header.alg}`);
  if (!crypto.subtle) throw new Error('WebCrypto unavailable (needs https or localhost)');

  const res = await fetch('/.well-known/jwks.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error(`jwks HTTP ${res.status}`);
  const { keys = [] } = await res.json();
  const jwk = keys.find((k) => k.kid === header.kid && k.kty === 'RSA');
  if (!jwk) throw new Error(`no key for kid ${header.kid}`);

  const key = await crypto.subtle.importKey(
    'jwk',
    { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RS256', ext: true },
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['verify'],
  );
  const ok = await crypto.subtle.verify(
    'RSASSA-PKCS1-v1_5',
    key,
    b64urlBytes(sig),
    new TextEncoder().encode(`${h}.${p}`),
  );
  if (!ok) throw new Error('bad signature');

  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw new Error('expired');
  if (claims.iss !== location.origin) throw new Error(`iss ${claims.iss} is not ${location.origin}`);
  return claims;
}

// profile returns GET /auth/me as pretty JSON, or the status and raw body.
// The client's fetch adds the token (and refreshes once on a 401).
async function profile() {
  try {
    const res = await auth.fetch('/auth/me');
    const body = await res.text();
    try {
      return JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      return `HTTP ${res.status}\n${body}`;
    }
  } catch (err) {
    return `error: ${err.message}`;
  }
}

// sessions lists GET /auth/sessions, each with a sign-out button (built
// with DOM calls: nothing from the answer is parsed as HTML).
async function sessions() {
  const list = $('sessions');
  list.replaceChildren();
  const res = await auth.fetch('/auth/sessions');
  if (!res.ok) {
    list.textContent = `HTTP ${res.status}`;
    return;
  }
  const { sessions: all = [] } = await res.json();
  for (const s of all) {
    const li = document.createElement('li');
    li.className = 'session';
    li.dataset.id = s.id;
    const where = `${s.user_agent.browser || 'Unknown browser'} on ${s.user_agent.os || 'unknown OS'}`;
    const text = document.createElement('span');
    text.textContent = `${where} · ${s.idp} · ${s.kind} · last used ${new Date(s.last_used_at).toLocaleString()}${s.current ? ' · this browser' : ''}`;
    li.append(text);
    if (!s.current) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-secondary session-revoke';
      b.textContent = 'Sign out';
      b.addEventListener('click', async () => {
        const r = await auth.fetch(`/auth/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
        if (r.ok) li.remove();
      });
      li.append(b);
    }
    list.append(li);
  }
}

async function load() {
  if (loading) return;
  loading = true;
  show('idle', 'loading…');
  $('login-box').hidden = true;
  reset();
  try {
    const token = await auth.getAccessToken();
    if (!token) return signedOut('not signed in');

    let claims;
    try {
      claims = await verify(token);
    } catch (err) {
      show('bad', `invalid: ${err.message}`);
      return;
    }
    shown = true;
    show('ok', 'verified');
    $('claims').textContent = JSON.stringify(claims, null, 2);

    $('profile').textContent = await profile();
    await sessions();
  } catch (err) {
    show('bad', `error: ${err.message}`);
  } finally {
    loading = false;
  }
}

async function logout() {
  try {
    await auth.logout();
    signedOut('signed out');
  } catch (err) {
    show('bad', `error: ${err.message}`);
  }
}

// Sign-in and sign-out in any tab of this origin show here too.
auth.onChange((event) => {
  if (event.type === 'signin' && !shown) load();
  if (event.type === 'signout' && shown) signedOut('signed out');
});

$('refresh').addEventListener('click', load);
$('logout').addEventListener('click', logout);
load();
