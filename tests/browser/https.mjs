// Scenario 10: a page served over https:// uploads to Preflight started with
// `--tls-self-signed`, over HTTP/2 (negotiated by ALPN). A web app on
// https:// can not call an http:// endpoint (mixed content), and HTTP/2 lifts
// the six-connections-per-origin limit on parallel part uploads.
//
// Chromium gets its own profile with `--ignore-certificate-errors` (this
// scenario only); node trusts the generated certificate itself. The page
// origin is https://localhost:PORT with the same certificate, Preflight is
// https://127.0.0.1:PORT: cross-origin, as in scenarios 2 and 3.

import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ACCESS_KEY, PreflightServer, SECRET_KEY, fetchTrusting, launchChromium, runDir, startPageServer } from './harness.mjs';
import { PATTERN_JS, md5hex, pattern } from './fixtures.mjs';
import { S3 } from './s3.mjs';

const MiB = 1024 * 1024;

describe('10. https:// page origin, HTTP/2 to Preflight with --tls-self-signed', () => {
  let dir, server, s3, site, browser, page, origin;
  /** The protocols of Preflight's responses, in arrival order. */
  const responses = [];

  before(async () => {
    dir = runDir();
    // The certificate is generated at the server's first start; `sync` needs
    // it, so the server starts with node's fetch and gets a trusting one after.
    server = await PreflightServer.start(dir, ['--tls-self-signed']);
    assert.match(server.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
    const tlsDir = join(dir, 'data', 'tls');
    const cert = readFileSync(join(tlsDir, 'self-signed-cert.pem'));
    const key = readFileSync(join(tlsDir, 'self-signed-key.pem'));
    server.fetch = fetchTrusting(cert);
    s3 = new S3({ endpoint: server.endpoint, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, fetch: server.fetch });
    site = await startPageServer('localhost', 'https origin', 0, { tls: { cert, key } });
    origin = site.origin;
    browser = await launchChromium(dir, ['--ignore-certificate-errors']);
    page = await browser.newPage();
    const cdp = await browser.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.responseReceived', ({ response }) => {
      if (response.url.startsWith(server.endpoint + '/')) responses.push(response.protocol);
    });
    await page.goto(origin + '/');
    console.log(`# HTTPS: Preflight ${server.endpoint}; page ${origin}`);
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    await server?.stop();
    if (dir && !process.env.PREFLIGHT_BROWSER_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The protocol of each response from Preflight's origin since the last
   * call, as Chromium's network stack reports it (DevTools protocol). The
   * page's own `performance` entries hide `nextHopProtocol` cross-origin
   * unless the response carries `Timing-Allow-Origin`, which S3 does not send.
   */
  const protocols = () => responses.splice(0, responses.length);

  test('the page is a secure context on https://', async () => {
    assert.equal(await page.evaluate(() => [location.protocol, window.isSecureContext].join(' ')), 'https: true');
  });

  test('presigned PUT from the https:// page goes over h2', async () => {
    const bucket = 's10-put';
    await s3.createBucket(bucket);
    await s3.putBucketCors(bucket, [{ AllowedOrigins: [origin], AllowedMethods: ['PUT'], AllowedHeaders: ['content-type'] }]);
    const body = pattern(200_000, 3);
    const url = s3.presign({ method: 'PUT', bucket, key: 'photo.bin' });
    const seen = await page.evaluate(
      async ({ url, size, PATTERN_JS }) => {
        const res = await fetch(url, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: eval(PATTERN_JS)(size, 3) });
        return { status: res.status };
      },
      { url, size: body.length, PATTERN_JS },
    );
    assert.deepEqual(seen, { status: 200 });
    // The preflight (when Chromium reports it) and the PUT.
    const used = protocols();
    assert.ok(used.length >= 1 && used.every((p) => p === 'h2'), `protocols: ${used}`);
    const events = await server.seen({ bucket, key: 'photo.bin' });
    assert.deepEqual(
      events.map((e) => [e.preflight, e.origin, e.method, e.allowed]),
      [
        [true, origin, 'PUT', true],
        [false, origin, 'PUT', true],
      ],
    );
    assert.deepEqual(await s3.getObject(bucket, 'photo.bin'), body);
  });

  test('presigned multipart: eight parts uploaded in parallel over h2, then completed', async () => {
    const bucket = 's10-mpu';
    const key = 'video.bin';
    const parts = Array.from({ length: 8 }, (_, i) => pattern(i < 7 ? 5 * MiB : 1000, i + 1));
    await s3.createBucket(bucket);
    await s3.putBucketCors(bucket, [
      { AllowedOrigins: [origin], AllowedMethods: ['PUT', 'POST'], AllowedHeaders: ['content-type'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 600 },
    ]);
    const uploadId = await s3.createMultipartUpload(bucket, key);
    const partUrls = parts.map((_, i) => s3.presign({ method: 'PUT', bucket, key, query: { partNumber: String(i + 1), uploadId } }));
    const completeUrl = s3.presign({ method: 'POST', bucket, key, query: { uploadId } });
    const seen = await page.evaluate(
      async ({ partUrls, completeUrl, sizes, PATTERN_JS }) => {
        const make = eval(PATTERN_JS);
        // More parts in flight than HTTP/1.1's six connections per origin.
        const etags = await Promise.all(
          partUrls.map(async (url, i) => {
            const res = await fetch(url, { method: 'PUT', body: make(sizes[i], i + 1) });
            return res.ok ? res.headers.get('ETag') : `failed ${res.status}`;
          }),
        );
        const xml =
          '<CompleteMultipartUpload>' +
          etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('') +
          '</CompleteMultipartUpload>';
        const res = await fetch(completeUrl, { method: 'POST', headers: { 'Content-Type': 'application/xml' }, body: xml });
        return { etags, complete: { status: res.status, body: await res.text() } };
      },
      { partUrls, completeUrl, sizes: parts.map((p) => p.length), PATTERN_JS },
    );
    assert.deepEqual(seen.etags, parts.map((p) => `"${md5hex(p)}"`));
    assert.equal(seen.complete.status, 200, seen.complete.body);
    const whole = md5hex(Buffer.concat(parts.map((p) => Buffer.from(md5hex(p), 'hex'))));
    assert.match(seen.complete.body, new RegExp(`<ETag>(&quot;|")${whole}-8(&quot;|")</ETag>`));
    const used = protocols();
    assert.ok(used.length >= 9, `one response per part and the completion at least: ${used}`);
    assert.ok(used.every((p) => p === 'h2'), `protocols: ${used}`);
    assert.deepEqual(await s3.getObject(bucket, key), Buffer.concat(parts));
  });
});
