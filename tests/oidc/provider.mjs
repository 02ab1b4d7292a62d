// Test-only OpenID Connect provider for Tenantry's sign-in tests.
//
// Usage: node tests/oidc/provider.mjs CONFIG.json
//
// A real `oidc-provider` (v9) instance so the app's relying-party code is tested against a
// standards-conforming IdP rather than a mock. The Python side (tests/support/oidc_provider.py)
// writes CONFIG.json, starts this script and waits for the single stdout line `READY <issuer>`.
//
// CONFIG.json:
//   port                 TCP port on 127.0.0.1; 0 picks a free one (no race: we listen first)
//   issuer               optional; defaults to http://127.0.0.1:<port>
//   clients              [{client_id, client_secret, redirect_uris, post_logout_redirect_uris,
//                          backchannel_logout_uri?, backchannel_logout_session_required?,
//                          token_endpoint_auth_method?}]
//   accounts             {sub: {email, email_verified, name, groups, ...extra claims}}
//   claims_in_id_token   true: scope claims also go in the ID token (conformIdTokenClaims false)
//   jwks                 private JWKS ({keys: [...]}) so tests can sign with the same key;
//                        generated when absent
//
// Test-only control endpoint (not part of any spec):
//   POST /__test/backchannel-logout  JSON {sub, client_id, sid?}
//     makes the provider send a real back-channel logout token to the client's
//     backchannel_logout_uri; answers with the status that endpoint returned, and the headers
//     X-Test-Delivered-Status and X-Test-Logout-Token. A failure before delivery answers 4xx/502
//     with a JSON {error} body and no X-Test-Delivered-Status header.

import { AsyncLocalStorage } from 'node:async_hooks';
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';

// oidc-provider prints its NOTICEs with console.info, i.e. on stdout. stdout is reserved for the
// READY line, so route everything else to stderr *before* the library is loaded.
const writeReady = (line) => process.stdout.write(`${line}\n`);
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const { default: Provider } = await import('oidc-provider');

const STANDARD_ACCOUNT_CLAIMS = new Set(['sub', 'email', 'email_verified', 'name', 'groups']);
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

function fail(message) {
  console.error(`provider.mjs: ${message}`);
  process.exit(2);
}

function loadConfig() {
  const path = process.argv[2];
  if (!path) fail('usage: node provider.mjs CONFIG.json');
  let config;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    fail(`cannot read config ${path}: ${err.message}`);
  }
  if (!Array.isArray(config.clients) || config.clients.length === 0) fail('config.clients must be a non-empty list');
  if (!config.accounts || typeof config.accounts !== 'object') fail('config.accounts must be an object');
  return config;
}

function generateJwks() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: `test-${crypto.randomUUID()}`, alg: 'RS256', use: 'sig' }] };
}

async function readRawBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginFormAgain(action, login) {
  // Same field names as devInteractions' own form, so a browser user (or the Python helper) can
  // retry; the 401 tells automated callers clearly that the login was refused.
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign-in</title></head><body>
<h1>Sign-in</h1>
<p class="error">Unknown login: ${escapeHtml(login)}. Use an account's sub or email.</p>
<form autocomplete="off" action="${escapeHtml(action)}" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password">
  <button type="submit" class="login login-submit">Sign-in</button>
</form></body></html>`;
}

const config = loadConfig();
const accounts = config.accounts;
const extraClaimNames = new Set();
for (const claims of Object.values(accounts)) {
  for (const name of Object.keys(claims)) {
    if (!STANDARD_ACCOUNT_CLAIMS.has(name)) extraClaimNames.add(name);
  }
}

function resolveLogin(login) {
  if (typeof login !== 'string' || login === '') return undefined;
  if (Object.hasOwn(accounts, login)) return login;
  const wanted = login.toLowerCase();
  return Object.keys(accounts).find((sub) => String(accounts[sub].email ?? '').toLowerCase() === wanted);
}

// Each outgoing fetch (back-channel logout) records its status here so the control endpoint can
// report what the client's endpoint answered.
const deliveries = new AsyncLocalStorage();

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(config.port ?? 0), '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = config.issuer || `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  jwks: config.jwks || generateJwks(),
  cookies: {
    // Distinct names: cookies ignore the port, and the app under test also runs on 127.0.0.1.
    names: { session: 'testop_session', interaction: 'testop_interaction', resume: 'testop_resume' },
    keys: [crypto.randomBytes(32).toString('base64url')],
  },
  claims: {
    acr: null,
    sid: null,
    auth_time: null,
    iss: null,
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', ...extraClaimNames],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  conformIdTokenClaims: !config.claims_in_id_token,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    claimsParameter: { enabled: true },
  },
  async findAccount(ctx, sub) {
    if (!Object.hasOwn(accounts, sub)) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { ...accounts[sub], sub };
      },
    };
  },
  // Auto-consent: grant whatever OIDC scopes and claims the request asks for, so no consent page.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    }
    const scopes = [...oidc.requestParamOIDCScopes];
    if (scopes.length) grant.addOIDCScope(scopes.join(' '));
    const claims = [...oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
  // The default fetch blocks loopback addresses (SSRF protection), but every test receiver lives
  // on 127.0.0.1: drop the guarding dispatcher and record the outcome for the control endpoint.
  async fetch(url, options) {
    const { dispatcher, ...rest } = options;
    const record = deliveries.getStore();
    if (record && rest.body instanceof URLSearchParams) record.logoutToken = rest.body.get('logout_token');
    const response = await globalThis.fetch(url, rest);
    if (record) record.status = response.status;
    return response;
  },
});

// Static clients are only validated on first use; validate them now so a bad test config fails
// at start (with the reason on stderr) instead of as a puzzling error page mid-sign-in.
for (const { client_id: clientId } of config.clients) {
  try {
    await provider.Client.find(clientId);
  } catch (err) {
    fail(`invalid client ${clientId}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
  }
}

provider.on('backchannel.error', (ctx, err, client) => {
  console.error(`backchannel logout to ${client?.clientId} failed: ${err.message}`);
});

function sendJson(ctx, status, body) {
  ctx.status = status;
  ctx.body = body;
}

async function handleBackchannelTrigger(ctx) {
  let request;
  try {
    request = JSON.parse((await readRawBody(ctx.req)).toString('utf8'));
  } catch (err) {
    sendJson(ctx, 400, { error: `invalid JSON body: ${err.message}` });
    return;
  }
  const { sub, client_id: clientId, sid } = request ?? {};
  if (typeof sub !== 'string' || typeof clientId !== 'string') {
    sendJson(ctx, 400, { error: 'body must be {"sub": str, "client_id": str, "sid"?: str}' });
    return;
  }
  const client = await provider.Client.find(clientId);
  if (!client) {
    sendJson(ctx, 404, { error: `unknown client_id ${clientId}` });
    return;
  }
  if (!client.backchannelLogoutUri) {
    sendJson(ctx, 400, { error: `client ${clientId} has no backchannel_logout_uri` });
    return;
  }
  const record = {};
  try {
    // The provider's own implementation builds and signs the logout token (iss, aud, iat, exp,
    // jti, sub, sid when the client requires it, events; typ logout+jwt).
    await deliveries.run(record, () => client.backchannelLogout(sub, sid));
  } catch (err) {
    if (record.status === undefined) {
      sendJson(ctx, 502, { error: `delivery failed: ${err.message}` });
      return;
    }
  }
  ctx.set('X-Test-Delivered-Status', String(record.status));
  if (record.logoutToken) ctx.set('X-Test-Logout-Token', record.logoutToken);
  ctx.status = record.status;
  ctx.body = { delivered_status: record.status };
}

async function handleLoginSubmit(ctx, next) {
  const raw = await readRawBody(ctx.req);
  const form = new URLSearchParams(raw.toString('utf8'));
  if (form.get('prompt') !== 'login') {
    // Not ours: hand the already-read body to oidc-provider's parser fallback.
    ctx.req.body = raw;
    await next();
    return;
  }
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'text';
    ctx.body = `interaction not found: ${err.message}`;
    return;
  }
  if (details.prompt.name !== 'login') {
    ctx.req.body = raw;
    await next();
    return;
  }
  const login = form.get('login') ?? '';
  const sub = resolveLogin(login);
  if (!sub) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = loginFormAgain(ctx.path, login);
    return;
  }
  const returnTo = await provider.interactionResult(
    ctx.req,
    ctx.res,
    { login: { accountId: sub } },
    { mergeWithLastSubmission: false },
  );
  ctx.status = 303;
  ctx.redirect(returnTo);
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/__test/backchannel-logout') {
    await handleBackchannelTrigger(ctx);
    return;
  }
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)) {
    await handleLoginSubmit(ctx, next);
    return;
  }
  await next();
});

server.on('request', provider.callback());

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

writeReady(`READY ${issuer}`);
