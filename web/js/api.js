// Reading the API, and the read token it may need.
//
// A hivewatch started with --read-token wants it on every API request (a bearer header) and on the live stream (the
// access_token parameter: browsers cannot set headers on a WebSocket). The page takes it from its own address once
// (`/?access_token=…` or `/#access_token=…`), keeps it in this browser's storage and removes it from the address
// bar; or asks for it when the server answers 401.
import { dom } from './dom.js';
import { setStatus } from './status.js';

const TOKEN_KEY = 'hivewatch.readToken';
export const auth = { token: null };

export function initToken() {
  const url = new URL(location.href);
  const hash = new URLSearchParams(url.hash.slice(1));
  const given = url.searchParams.get('access_token') || hash.get('access_token');
  if (given) {
    saveToken(given);
    url.searchParams.delete('access_token');
    hash.delete('access_token');
    url.hash = hash.toString();
    history.replaceState(null, '', url);
  } else {
    try {
      auth.token = localStorage.getItem(TOKEN_KEY);
    } catch {
      auth.token = null;
    }
  }
}

export function saveToken(token) {
  auth.token = token || null;
  try {
    if (auth.token) localStorage.setItem(TOKEN_KEY, auth.token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage may be disabled: the token lasts as long as the page
  }
}

function authHeaders() {
  return auth.token ? { authorization: `Bearer ${auth.token}` } : {};
}

function showAuth(message) {
  dom.authMessage.textContent = message;
  dom.auth.hidden = false;
  setStatus('closed', 'read token needed');
  dom.authToken.focus();
}

// The server refused the token, or wants one: the form asks for it.
export function askForToken() {
  showAuth(auth.token ? 'The read token was refused; enter the right one.' : 'This hivewatch needs its read token.');
}

// After a connection failed before opening: is it the token? (Otherwise hivewatch is down or restarting.)
export async function tokenRefused() {
  try {
    const resp = await fetch(new URL('api/v1/observability/sessions?limit=1', document.baseURI), {
      headers: authHeaders(),
    });
    return resp.status === 401;
  } catch {
    return false;
  }
}

export async function getJSON(path) {
  const resp = await fetch(new URL(path, document.baseURI), {
    headers: { accept: 'application/json', ...authHeaders() },
  });
  const body = await resp.json().catch(() => null);
  if (resp.status === 401) askForToken();
  if (!resp.ok) {
    const err = new Error((body && body.error) || `${resp.status} ${resp.statusText}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}
