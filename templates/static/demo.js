// Demo frontend for the broker: get an access token from the refresh cookie,
// verify it in the browser against the JWKS, then call /auth/me with it.
'use strict';

const $ = (id) => document.getElementById(id);

function show(state, text) {
  const s = $('status');
  s.textContent = text;
  s.dataset.state = state; // ok | bad | idle (styling only)
}

function reset() {
  $('claims').textContent = '';
  $('profile').textContent = '';
}

function signedOut(text) {
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
async function profile(token) {
  try {
    const res = await fetch('/auth/me', { headers: { Authorization: `Bearer ${token}` } });
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

async function load() {
  show('idle', 'loading…');
  $('login-box').hidden = true;
  reset();
  try {
    const res = await fetch('/auth/token', { method: 'POST', credentials: 'include' });
    if (res.status === 401) return signedOut('not signed in');
    if (!res.ok) throw new Error(`token HTTP ${res.status}`);
    const { access_token: token } = await res.json();
    if (!token) throw new Error('no access_token in response');

    let claims;
    try {
      claims = await verify(token);
    } catch (err) {
      show('bad', `invalid: ${err.message}`);
      return;
    }
    show('ok', 'verified');
    $('claims').textContent = JSON.stringify(claims, null, 2);

    $('profile').textContent = await profile(token);
  } catch (err) {
    show('bad', `error: ${err.message}`);
  }
}

async function logout() {
  try {
    const res = await fetch('/auth/logout', { method: 'POST', credentials: 'include' });
    if (!res.ok && res.status !== 401) throw new Error(`logout HTTP ${res.status}`);
    signedOut('signed out');
  } catch (err) {
    show('bad', `error: ${err.message}`);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('refresh').addEventListener('click', load);
  $('logout').addEventListener('click', logout);
  load();
});
