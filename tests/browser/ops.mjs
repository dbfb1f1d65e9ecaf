#!/usr/bin/env node
// Browser harness for the gateway's integration tests: drives the operator dashboard in
// headless Chromium over mutual TLS. It reads one JSON command per line on stdin and answers
// each with exactly one JSON line on stdout; logs go to stderr. See README.md for the protocol.
//
// Environment:
//   OPS_URL         origin of the gateway, e.g. https://127.0.0.1:43211 (required)
//   OPS_CERT        PEM certificate of the operator (client certificate, required)
//   OPS_KEY         PEM private key of the operator (required)
//   OPS_CA          PEM CA that issued the gateway's server certificate; when given, the server
//                   certificate is verified against it (see "TLS verification" below)
//   OPS_INSECURE    "1": do not verify the server certificate even when OPS_CA is given
//   CHROMIUM        Chromium executable (default /usr/bin/chromium)
//   SCREENSHOT_DIR  where `screenshot` writes (default: $TMPDIR/ops-screenshots)
//   OPS_LOCALE      browser locale (default en-US)
//
// TLS verification: Playwright's client-certificate support runs a local proxy between Chromium
// and the server. Chromium always accepts the proxy's own certificate; the proxy's connection to
// the server verifies the server certificate unless `ignoreHTTPSErrors` is set, against Node's CA
// store. Node only reads extra CAs from NODE_EXTRA_CA_CERTS at start-up, so when OPS_CA is given
// and NODE_EXTRA_CA_CERTS does not already name it, this script runs itself again in a child
// Node process with NODE_EXTRA_CA_CERTS=$OPS_CA (stdin/stdout/stderr are shared with the child).

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const env = process.env;

function log(...args) {
  process.stderr.write(`[ops.mjs] ${args.join(' ')}\n`);
}
// Nothing but answers may reach stdout.
console.log = console.info = console.debug = (...args) => console.error(...args);

function answer(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(error, extra = {}) {
  return { ok: false, error: String(error), ...extra };
}

function samePath(a, b) {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Re-run with NODE_EXTRA_CA_CERTS when the server certificate must be verified against OPS_CA.

const verifyServer = Boolean(env.OPS_CA) && env.OPS_INSECURE !== '1';

if (verifyServer && !(env.NODE_EXTRA_CA_CERTS && samePath(env.NODE_EXTRA_CA_CERTS, env.OPS_CA))) {
  try {
    readFileSync(env.OPS_CA);
  } catch (e) {
    answer(fail(`cannot read OPS_CA ${env.OPS_CA}: ${e.message}`));
    process.exit(2);
  }
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      stdio: 'inherit',
      env: { ...env, NODE_EXTRA_CA_CERTS: env.OPS_CA, OPS_HARNESS_PARENT_PID: String(process.pid) },
    },
  );
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, () => child.kill(sig));
  }
  child.on('error', (e) => {
    answer(fail(`cannot start node: ${e.message}`));
    process.exit(2);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
} else {
  main().catch((e) => {
    log('fatal:', e?.stack ?? e);
    answer(fail(`harness error: ${e?.message ?? e}`));
    process.exit(2);
  });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  process.on('unhandledRejection', (e) => log('unhandled rejection:', e?.stack ?? e));

  let browser;
  let closing = false;
  async function shutdown(code) {
    if (closing) return;
    closing = true;
    await browser?.close().catch(() => {});
    process.exit(code);
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => shutdown(0));

  // The child of a re-run leaves when its parent goes (e.g. the parent was SIGKILLed).
  if (env.OPS_HARNESS_PARENT_PID) {
    const parent = Number(env.OPS_HARNESS_PARENT_PID);
    setInterval(() => {
      if (process.ppid !== parent) {
        log('parent process gone, quitting');
        shutdown(1);
      }
    }, 1000).unref();
  }

  let base;
  try {
    if (!env.OPS_URL) throw new Error('OPS_URL is not set');
    base = new URL(env.OPS_URL);
    if (!env.OPS_CERT || !env.OPS_KEY) throw new Error('OPS_CERT and OPS_KEY must be set');
    readFileSync(env.OPS_CERT);
    readFileSync(env.OPS_KEY);
  } catch (e) {
    answer(fail(e.message));
    process.exit(2);
  }

  const executablePath = env.CHROMIUM || '/usr/bin/chromium';
  const screenshotDir = env.SCREENSHOT_DIR || path.join(os.tmpdir(), 'ops-screenshots');
  const defaultViewport = { width: 1280, height: 800 };

  const { chromium } = await import('playwright-core');

  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      chromiumSandbox: false,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
      timeout: 60_000,
    });
  } catch (e) {
    answer(fail(`cannot launch Chromium at ${executablePath}: ${firstLine(e.message)}`));
    process.exit(2);
  }
  let disconnected = false;
  browser.on('disconnected', () => {
    disconnected = true;
    log('browser disconnected');
  });

  let context;
  let page;
  const pageErrors = [];
  try {
    context = await browser.newContext({
      clientCertificates: [{ origin: base.origin, certPath: env.OPS_CERT, keyPath: env.OPS_KEY }],
      ignoreHTTPSErrors: !verifyServer,
      viewport: defaultViewport,
      locale: env.OPS_LOCALE || 'en-US',
    });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') log(`console.${m.type()}:`, m.text());
    });
    page.on('pageerror', (e) => {
      pageErrors.push(String(e?.message ?? e));
      log('page error:', e?.message ?? e);
    });
  } catch (e) {
    answer(fail(`cannot create browser context: ${firstLine(e.message)}`));
    await browser.close().catch(() => {});
    process.exit(2);
  }
  log(
    `Chromium ${browser.version()} ready; client certificate for ${base.origin};`,
    verifyServer ? `server certificate verified against ${env.OPS_CA}` : 'server certificate NOT verified',
  );

  const urlOf = (p) => new URL(p ?? '/', base).href;

  // Runs fn; retries while the page is between documents ("Execution context was destroyed").
  async function inPage(fn, retryMs = 5_000) {
    const deadline = Date.now() + retryMs;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!isTransient(e) || Date.now() > deadline) throw e;
        await sleep(50);
      }
    }
  }

  const commands = {
    async open(c) {
      if (c.width || c.height) {
        const cur = page.viewportSize() ?? defaultViewport;
        await page.setViewportSize({ width: c.width ?? cur.width, height: c.height ?? cur.height });
      }
      const resp = await page.goto(urlOf(c.path), { waitUntil: c.wait_until ?? 'load', timeout: c.timeout_ms ?? 30_000 });
      const proxyError = await clientCertProxyError(resp);
      if (proxyError) return fail(proxyError, { status: resp.status() });
      return { ok: true, status: resp?.status() ?? null, title: await page.title(), url: page.url() };
    },

    async wait_attr(c) {
      need(c, 'selector', 'attr', 'value');
      const timeout = c.timeout_ms ?? 30_000;
      const want = String(c.value);
      const deadline = Date.now() + timeout;
      let last = null;
      let found = false;
      for (;;) {
        let snap = null;
        try {
          snap = await page.evaluate(
            ({ selector, attr }) => {
              const el = document.querySelector(selector);
              return el ? { value: el.getAttribute(attr), text: el.innerText } : null;
            },
            { selector: c.selector, attr: c.attr },
          );
        } catch (e) {
          if (!isTransient(e)) throw e;
        }
        if (snap) {
          found = true;
          last = snap.value;
          if (snap.value === want) return { ok: true, text: snap.text };
        }
        if (Date.now() >= deadline) {
          return fail(`timeout after ${timeout} ms waiting for ${c.selector} [${c.attr}="${want}"]` + (found ? '' : ' (no element matched)'), { last, found });
        }
        await sleep(Math.min(c.poll_ms ?? 100, Math.max(0, deadline - Date.now())));
      }
    },

    async click(c) {
      need(c, 'selector');
      const timeout = c.timeout_ms ?? 30_000;
      if (!c.wait_for_navigation) {
        await page.click(c.selector, { timeout });
        return { ok: true, url: page.url(), status: null };
      }
      const nav = waitForNewDocument(page, timeout);
      try {
        await page.click(c.selector, { timeout });
      } catch (e) {
        nav.cancel();
        throw e;
      }
      const resp = await nav.done;
      const proxyError = await clientCertProxyError(resp);
      if (proxyError) return fail(proxyError, { status: resp.status(), url: page.url() });
      const redirects = [];
      for (let req = resp.request().redirectedFrom(); req; req = req.redirectedFrom()) {
        const r = await req.response().catch(() => null);
        redirects.unshift({ method: req.method(), url: req.url(), status: r?.status() ?? null });
      }
      return { ok: true, url: page.url(), status: resp.status(), method: resp.request().method(), redirects };
    },

    async texts(c) {
      need(c, 'selector');
      const items = await inPage(() =>
        page.$$eval(c.selector, (els) =>
          els.map((el) => ({
            text: el.innerText,
            attrs: Object.fromEntries(
              [...el.attributes].filter((a) => a.name.startsWith('data-')).map((a) => [a.name, a.value]),
            ),
          })),
        ),
      );
      return { ok: true, texts: items.map((i) => i.text), attrs: items.map((i) => i.attrs) };
    },

    async attr(c) {
      need(c, 'selector', 'attr');
      const r = await inPage(() =>
        page.evaluate(
          ({ selector, attr }) => {
            const el = document.querySelector(selector);
            return el ? { found: true, value: el.getAttribute(attr) } : { found: false, value: null };
          },
          { selector: c.selector, attr: c.attr },
        ),
      );
      return { ok: true, ...r };
    },

    async fetch_status(c) {
      need(c, 'path');
      const r = await inPage(() =>
        page.evaluate(
          async ({ method, url, form, body, headers, redirect }) => {
            const init = { method, credentials: 'include', redirect, headers: { ...(headers ?? {}) } };
            if (form) {
              init.body = new URLSearchParams(form).toString();
              init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
            } else if (body !== undefined && body !== null) {
              init.body = body;
            }
            const resp = await fetch(url, init);
            const text = await resp.text().catch(() => '');
            return { status: resp.status, redirected: resp.redirected, type: resp.type, url: resp.url, body: text.slice(0, 1000) };
          },
          {
            method: (c.method ?? 'GET').toUpperCase(),
            url: urlOf(c.path),
            form: c.form ?? null,
            body: c.body ?? null,
            headers: c.headers ?? null,
            redirect: c.redirect ?? 'follow',
          },
        ),
      );
      const proxyError = r.status === 503 && r.body.match(/^Playwright client-certificate error:(.*)/s);
      if (proxyError) return fail(`TLS to the server failed: ${proxyError[1].trim()}`, { status: 503 });
      return { ok: true, ...r };
    },

    async screenshot(c) {
      need(c, 'name');
      const name = String(c.name);
      if (name !== path.basename(name) || name === '.' || name === '..') {
        throw new Error(`screenshot name must be a plain file name: ${name}`);
      }
      mkdirSync(screenshotDir, { recursive: true });
      const file = path.resolve(screenshotDir, name);
      await page.screenshot({ path: file, fullPage: Boolean(c.full_page), timeout: c.timeout_ms ?? 30_000 });
      return { ok: true, path: file };
    },

    async scroll(c) {
      const y = await inPage(() =>
        page.evaluate(({ x, y }) => {
          window.scrollTo(x, y);
          return window.scrollY;
        }, { x: Number(c.x ?? 0), y: Number(c.y ?? 0) }),
      );
      return { ok: true, y };
    },

    async scroll_y() {
      return { ok: true, y: await inPage(() => page.evaluate(() => window.scrollY)) };
    },

    async sleep(c) {
      await sleep(Math.max(0, Number(c.ms ?? 0)));
      return { ok: true };
    },

    async errors(c) {
      const errors = [...pageErrors];
      if (c.clear) pageErrors.length = 0;
      return { ok: true, errors };
    },

    async quit() {
      answer({ ok: true });
      await shutdown(0);
      return null;
    },
  };

  answer({ ok: true, ready: true, version: browser.version() });

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    let c;
    try {
      c = JSON.parse(line);
      if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error('a command is a JSON object');
    } catch (e) {
      answer(fail(`bad command line: ${e.message}`));
      continue;
    }
    const handler = Object.hasOwn(commands, c.cmd) ? commands[c.cmd] : null;
    if (!handler) {
      answer(fail(`unknown command: ${JSON.stringify(c.cmd)}`));
      continue;
    }
    if (disconnected && c.cmd !== 'quit') {
      answer(fail('browser disconnected'));
      continue;
    }
    const started = Date.now();
    let result;
    try {
      result = await handler(c);
    } catch (e) {
      result = fail(firstLine(e?.message ?? e));
    }
    if (result === null) return; // quit
    log(`${c.cmd} ${c.selector ?? c.path ?? c.name ?? ''} -> ${result.ok ? 'ok' : 'FAILED: ' + result.error} (${Date.now() - started} ms)`);
    answer(result);
  }
  log('stdin closed, quitting');
  await shutdown(0);
}

// Resolves with the final (non-redirect) response of the next main-frame document navigation,
// once that document has fired `load`. Unlike page.waitForNavigation this ignores same-document
// navigations (history API, fragments), which a self-refreshing page may make at any time.
function waitForNewDocument(page, timeout) {
  let finalResp = null;
  let settle;
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error(`timeout after ${timeout} ms waiting for the navigation to load`)), timeout);
    const isMainNav = (req) => req.isNavigationRequest() && req.frame() === page.mainFrame();
    const onResponse = (resp) => {
      if (!isMainNav(resp.request())) return;
      const st = resp.status();
      if (st >= 300 && st < 400 && resp.headers()['location']) return; // a redirect: the chain goes on
      finalResp = resp;
    };
    const onFailed = (req) => {
      if (isMainNav(req)) settle(new Error(`navigation to ${req.url()} failed: ${req.failure()?.errorText ?? 'unknown error'}`));
    };
    const onLoad = () => {
      if (finalResp) settle(null, finalResp);
    };
    const onClose = () => settle(new Error('page closed while waiting for the navigation'));
    settle = (err, value) => {
      clearTimeout(timer);
      page.off('response', onResponse);
      page.off('requestfailed', onFailed);
      page.off('load', onLoad);
      page.off('close', onClose);
      if (err) reject(err);
      else resolve(value);
    };
    page.on('response', onResponse);
    page.on('requestfailed', onFailed);
    page.on('load', onLoad);
    page.on('close', onClose);
  });
  done.catch(() => {});
  return { done, cancel: () => settle(new Error('cancelled')) };
}

function need(c, ...keys) {
  for (const k of keys) {
    if (c[k] === undefined || c[k] === null) throw new Error(`${c.cmd}: missing "${k}"`);
  }
}

function firstLine(s) {
  // Playwright errors carry a multi-line call log; the first lines say what failed.
  const lines = String(s).replace(/\u001b\[[0-9;]*m/g, '').split('\n').filter((l) => l.trim() && !/^=+/.test(l.trim()));
  return lines.slice(0, 3).join(' | ');
}

function isTransient(e) {
  return /Execution context was destroyed|Cannot find context with specified id|navigat/i.test(String(e?.message ?? e));
}

// Playwright's client-certificate proxy answers 503 with this page when it cannot reach the
// server over TLS (bad server certificate, handshake refused...).
async function clientCertProxyError(resp) {
  if (!resp || resp.status() !== 503) return null;
  const body = await resp.text().catch(() => '');
  const m = body.match(/Playwright client-certificate error:([\s\S]*)/);
  return m ? `TLS to the server failed: ${m[1].replace(/<br>/g, ' ').replace(/<[^>]*>/g, '').trim()}` : null;
}
