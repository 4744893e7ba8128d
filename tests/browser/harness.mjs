// The browser suite's moving parts: the real Preflight binary (with its CORS
// decision log read back as the "what the server saw" half of each
// scenario), two static page origins on loopback, and headless Chromium.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { request as httpsRequest, createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, normalize, resolve, extname } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const ACCESS_KEY = 'PFBROWSERACCESSKEY01';
export const SECRET_KEY = 'preflight-browser-secret-0000000000000000';

/** Flags from .library/env notes: no sandbox as root, no background traffic to a closed network. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumPath() {
  return process.env.PREFLIGHT_CHROMIUM ?? '/usr/bin/chromium';
}

export function preflightBinary() {
  return resolve(REPO, process.env.PREFLIGHT_BIN ?? 'target/debug/preflight');
}

/** A fresh temp dir for this run (data dir, browser profile, screenshots). */
export function runDir() {
  return mkdtempSync(join(tmpdir(), 'preflight-browser-'));
}

/**
 * Preflight on 127.0.0.1:0 with `RUST_LOG=preflight::cors=debug` and JSON logs:
 * every CORS decision (one per request that carries an Origin, `preflight=true`
 * for OPTIONS) lands in `events`.
 */
export class PreflightServer {
  /** `args`: extra `serve` flags; `fetch`: what `sync` uses (e.g. `fetchTrusting` for https). */
  static async start(dir, args = [], { fetch = globalThis.fetch } = {}) {
    const bin = preflightBinary();
    if (!existsSync(bin)) throw new Error(`${bin} not found: run \`cargo build --bin preflight\` first`);
    const child = spawn(
      bin,
      ['serve', '--addr', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--access-key', ACCESS_KEY,
        '--secret-key', SECRET_KEY, '--log-format', 'json', ...args],
      { env: { ...process.env, RUST_LOG: 'warn,preflight::cors=debug' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new PreflightServer(child);
    server.fetch = fetch;
    const endpoint = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`Preflight did not start:\n${server.stderr.join('\n')}`)), 30_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /^Preflight is serving S3 at (\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          ok(m[1]);
        }
      });
      child.on('exit', (code) => fail(new Error(`Preflight exited (${code}):\n${server.stderr.join('\n')}`)));
    });
    server.endpoint = endpoint;
    return server;
  }

  constructor(child) {
    this.child = child;
    this.events = [];
    this.stderr = [];
    this.syncs = 0;
    this.waiters = [];
    createInterface({ input: child.stderr }).on('line', (line) => {
      this.stderr.push(line);
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        return;
      }
      if (ev.target !== 'preflight::cors' || ev.fields?.message !== 'cors decision') return;
      this.events.push(ev.fields);
      for (const w of [...this.waiters]) w();
    });
  }

  /**
   * Waits until every decision the server logged so far has been read: sends
   * a marker preflight and waits for its log line. The server writes a
   * request's line before answering it, and stderr is one ordered pipe.
   */
  async sync() {
    const origin = `sync-${++this.syncs}`;
    const seen = () => this.events.some((e) => e.origin === origin);
    const arrived = new Promise((ok) => {
      const w = () => {
        if (seen()) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          ok();
        }
      };
      this.waiters.push(w);
    });
    await this.fetch(`${this.endpoint}/sync-marker/x`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET' },
    });
    await Promise.race([
      arrived,
      new Promise((_, fail) => setTimeout(() => fail(new Error('marker never logged')), 10_000)),
    ]);
  }

  /** Decisions for one bucket (and key), after a sync. */
  async seen({ bucket, key, preflight } = {}) {
    await this.sync();
    return this.events.filter(
      (e) =>
        (bucket === undefined || e.bucket === bucket) &&
        (key === undefined || e.key === key) &&
        (preflight === undefined || e.preflight === preflight),
    );
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

/**
 * One static origin. `/` is a blank page for `page.evaluate`; `/example/` is
 * examples/browser-upload, served as a user would open it.
 */
export async function startPageServer(host, title, port = 0, { tls } = {}) {
  const exampleRoot = join(REPO, 'examples', 'browser-upload');
  const handler = (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': MIME['.html'] });
      res.end(`<!doctype html><meta charset="utf-8"><title>${title}</title><body><h1>${title}</h1>`);
      return;
    }
    if (url.pathname.startsWith('/example/')) {
      const rel = normalize(url.pathname.slice('/example/'.length) || 'index.html');
      const file = join(exampleRoot, rel);
      if (file.startsWith(exampleRoot) && existsSync(file)) {
        res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
        res.end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404).end('not found');
  };
  const servers = [];
  // `tls`: `{cert, key}` PEM for an https:// origin.
  const make = () => (tls ? createHttpsServer(tls, handler) : createServer(handler));
  const first = make();
  first.listen(port, host === 'localhost' ? '127.0.0.1' : host);
  await once(first, 'listening');
  servers.push(first);
  const realPort = first.address().port;
  if (host === 'localhost') {
    // Chromium may try ::1 first for localhost; answer there too when IPv6 exists.
    const v6 = make();
    await new Promise((ok) => {
      v6.once('error', ok);
      v6.listen(realPort, '::1', () => {
        servers.push(v6);
        ok();
      });
    });
  }
  return {
    origin: `${tls ? 'https' : 'http'}://${host}:${realPort}`,
    close: () => Promise.all(servers.map((s) => new Promise((ok) => s.close(ok)))),
  };
}

/** Headless Chromium with a fresh profile (`--user-data-dir`) in `dir`, plus `extraArgs`. */
export async function launchChromium(dir, extraArgs = []) {
  const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: chromiumPath(),
    headless: true,
    args: [...CHROMIUM_FLAGS, ...extraArgs],
    viewport: { width: 1000, height: 760 },
  });
  return context;
}

/**
 * A `fetch` for node that trusts the PEM certificate `ca` (Node 20's fetch
 * takes no CA option): enough of a Response for `S3` and `sync`.
 */
export function fetchTrusting(ca) {
  return (url, init = {}) =>
    new Promise((ok, fail) => {
      const method = init.method ?? 'GET';
      const req = httpsRequest(new URL(url), { method, headers: init.headers ?? {}, ca }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
          const empty = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
          ok(new Response(empty ? null : Buffer.concat(chunks), { status: res.statusCode, headers }));
        });
      });
      req.on('error', fail);
      req.end(init.body ?? undefined);
    });
}
