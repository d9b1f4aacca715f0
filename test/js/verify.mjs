#!/usr/bin/env node
// Verifies the broker's access tokens the way a Node service does: jose's
// createRemoteJWKSet (fetches and caches the JWKS, refetches on an unknown
// kid) and jwtVerify with the expected issuer and audience.
//
// Usage:
//   BROKER_ISSUER=https://auth.example.com node verify.mjs TOKEN...
//   ACCESS_TOKEN=eyJ... BROKER_ISSUER=... node verify.mjs
//   ... | node verify.mjs            (one case per stdin line)
//
// Environment:
//   BROKER_ISSUER     the broker's issuer (required); the `iss` every token must carry
//   BROKER_AUDIENCE   expected `aud` (default https://api.example.com)
//   BROKER_JWKS_URL   default BROKER_ISSUER + /.well-known/jwks.json
//   JWKS_COOLDOWN_MS  jose's cooldownDuration: the least time between two JWKS
//                     fetches prompted by an unknown kid (jose's default 30000)
//
// A stdin line is either a bare token or a JSON object
//   {"name": "...", "token": "...", "issuer": "...", "audience": "...", "now": <unix seconds>}
// whose optional fields override the expectations for that case (tests use
// "now" to verify against the broker's test clock). Every case prints one
// JSON line: {"name", "ok": true, "kid", "claims"} or
// {"name", "ok": false, "code", "error"}. The exit status is 0 when every
// token verified, 1 when any was refused, 2 on a usage error.
import { createInterface } from 'node:readline';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const issuer = process.env.BROKER_ISSUER;
if (!issuer) {
  process.stderr.write('verify.mjs: set BROKER_ISSUER to the broker\'s issuer URL\n');
  process.exit(2);
}
const audience = process.env.BROKER_AUDIENCE || 'https://api.example.com';
const jwksURL = new URL(process.env.BROKER_JWKS_URL || `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`);

const options = {};
if (process.env.JWKS_COOLDOWN_MS) options.cooldownDuration = Number(process.env.JWKS_COOLDOWN_MS);
// One key set for the life of the process, as in a service: it is fetched
// once, cached, and refetched when a token names a kid it does not hold.
const JWKS = createRemoteJWKSet(jwksURL, options);

// verify checks one token and returns its result line.
async function verify(c) {
  const name = c.name ?? '';
  try {
    const { payload, protectedHeader } = await jwtVerify(c.token, JWKS, {
      issuer: c.issuer ?? issuer,
      audience: c.audience ?? audience,
      algorithms: ['RS256'],
      typ: 'at+jwt', // RFC 9068 access tokens; the broker always sets it
      ...(c.now !== undefined ? { currentDate: new Date(c.now * 1000) } : {}),
    });
    return { name, ok: true, kid: protectedHeader.kid, claims: payload };
  } catch (err) {
    return { name, ok: false, code: err.code ?? err.name, error: err.message };
  }
}

function parseLine(line) {
  const s = line.trim();
  if (s === '') return null;
  if (s.startsWith('{')) {
    const c = JSON.parse(s);
    if (typeof c.token !== 'string') throw new Error('a JSON case needs a "token" string');
    return c;
  }
  return { token: s };
}

let refused = 0;
function emit(result) {
  if (!result.ok) refused++;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const args = process.argv.slice(2);
if (args.length > 0 || process.env.ACCESS_TOKEN) {
  const tokens = args.length > 0 ? args : [process.env.ACCESS_TOKEN];
  for (const [i, token] of tokens.entries()) emit(await verify({ name: `arg${i}`, token }));
} else {
  // Cases are answered one at a time, in order, as they arrive: a caller
  // can send a line, read its result, change the world, and send the next.
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    let c;
    try {
      c = parseLine(line);
    } catch (err) {
      process.stderr.write(`verify.mjs: bad input line: ${err.message}\n`);
      process.exit(2);
    }
    if (c) emit(await verify(c));
  }
}
process.exitCode = refused > 0 ? 1 : 0;
