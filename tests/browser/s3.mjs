// A minimal S3 client for the browser suite: SigV4 header signing (the
// bucket owner's setup and checks), SigV4 query presigning (the URLs handed
// to the page) and a SigV4 POST policy (what SDKs' createPresignedPost make).
// Written on node:crypto so that the suite needs nothing but Node and Chromium.

import { createHash, createHmac } from 'node:crypto';

const SERVICE = 's3';

const sha256hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding, as SigV4 wants it (`encodeURIComponent` leaves `!'()*`). */
export function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function amzDates(now = new Date()) {
  const iso = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return { amzDate: iso, day: iso.slice(0, 8) };
}

export class S3 {
  /** @param {{endpoint: string, accessKey: string, secretKey: string, region?: string, fetch?: typeof fetch}} o */
  constructor({ endpoint, accessKey, secretKey, region = 'us-east-1', fetch = globalThis.fetch }) {
    this.fetch = fetch;
    this.endpoint = endpoint.replace(/\/$/, '');
    this.host = new URL(this.endpoint).host;
    this.accessKey = accessKey;
    this.secretKey = secretKey;
    this.region = region;
  }

  signingKey(day) {
    const kDate = hmac('AWS4' + this.secretKey, day);
    const kRegion = hmac(kDate, this.region);
    const kService = hmac(kRegion, SERVICE);
    return hmac(kService, 'aws4_request');
  }

  scope(day) {
    return `${day}/${this.region}/${SERVICE}/aws4_request`;
  }

  /** Path-style canonical URI: `/bucket/key` with each key segment encoded. */
  path(bucket, key) {
    let p = '/' + (bucket ?? '');
    if (key !== undefined && key !== null) p += '/' + key.split('/').map(uriEncode).join('/');
    return p;
  }

  static canonicalQuery(query) {
    return Object.entries(query)
      .map(([k, v]) => [uriEncode(k), uriEncode(String(v))])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
  }

  /** A presigned URL (signature in the query, only `host` signed). */
  presign({ method = 'GET', bucket, key, query = {}, expires = 900, now }) {
    const { amzDate, day } = amzDates(now);
    const q = {
      ...query,
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `${this.accessKey}/${this.scope(day)}`,
      'X-Amz-Date': amzDate,
      'X-Amz-Expires': String(expires),
      'X-Amz-SignedHeaders': 'host',
    };
    const path = this.path(bucket, key);
    const cq = S3.canonicalQuery(q);
    const canonical = [method, path, cq, `host:${this.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
    const toSign = ['AWS4-HMAC-SHA256', amzDate, this.scope(day), sha256hex(canonical)].join('\n');
    const sig = createHmac('sha256', this.signingKey(day)).update(toSign).digest('hex');
    return `${this.endpoint}${path}?${cq}&X-Amz-Signature=${sig}`;
  }

  /** Sends a header-signed request as the bucket owner; resolves to a fetch Response. */
  async request({ method = 'GET', bucket, key, query = {}, headers = {}, body }) {
    const { amzDate, day } = amzDates();
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    const h = {};
    for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = String(v).trim();
    h['host'] = this.host;
    h['x-amz-date'] = amzDate;
    h['x-amz-content-sha256'] = sha256hex(payload);
    const names = Object.keys(h).sort();
    const path = this.path(bucket, key);
    const cq = S3.canonicalQuery(query);
    const canonical = [
      method,
      path,
      cq,
      names.map((n) => `${n}:${h[n]}\n`).join(''),
      names.join(';'),
      h['x-amz-content-sha256'],
    ].join('\n');
    const toSign = ['AWS4-HMAC-SHA256', amzDate, this.scope(day), sha256hex(canonical)].join('\n');
    const sig = createHmac('sha256', this.signingKey(day)).update(toSign).digest('hex');
    const auth = `AWS4-HMAC-SHA256 Credential=${this.accessKey}/${this.scope(day)}, SignedHeaders=${names.join(';')}, Signature=${sig}`;
    const sendHeaders = { ...h, authorization: auth };
    delete sendHeaders.host; // fetch sets it from the URL, to the same value
    const url = `${this.endpoint}${path}${cq ? '?' + cq : ''}`;
    return this.fetch(url, { method, headers: sendHeaders, body: method === 'GET' || method === 'HEAD' ? undefined : payload });
  }

  /** Like `request`, but throws with the S3 error text unless the status is 2xx. */
  async ok(args) {
    const res = await this.request(args);
    const text = await res.text();
    if (!res.ok) throw new Error(`${args.method ?? 'GET'} ${args.bucket}/${args.key ?? ''} -> ${res.status}: ${text}`);
    return { res, text };
  }

  createBucket(bucket, { acl } = {}) {
    return this.ok({ method: 'PUT', bucket, headers: acl ? { 'x-amz-acl': acl } : {} });
  }

  putObject(bucket, key, body, { contentType, acl } = {}) {
    const headers = {};
    if (contentType) headers['content-type'] = contentType;
    if (acl) headers['x-amz-acl'] = acl;
    return this.ok({ method: 'PUT', bucket, key, body, headers });
  }

  /** PutBucketCors from a JS description of the rules (as the aws CLI's JSON). */
  putBucketCors(bucket, rules) {
    const xml = corsXml(rules);
    const md5 = createHash('md5').update(xml).digest('base64');
    return this.ok({
      method: 'PUT',
      bucket,
      query: { cors: '' },
      body: xml,
      headers: { 'content-md5': md5, 'content-type': 'application/xml' },
    });
  }

  /** HeadObject as the owner: `null` when the key does not exist. */
  async headObject(bucket, key) {
    const res = await this.request({ method: 'HEAD', bucket, key });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`HEAD ${bucket}/${key} -> ${res.status}`);
    return res.headers;
  }

  async getObject(bucket, key) {
    const res = await this.request({ method: 'GET', bucket, key });
    if (!res.ok) throw new Error(`GET ${bucket}/${key} -> ${res.status}: ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async createMultipartUpload(bucket, key) {
    const { text } = await this.ok({ method: 'POST', bucket, key, query: { uploads: '' } });
    const m = /<UploadId>([^<]+)<\/UploadId>/.exec(text);
    if (!m) throw new Error(`no UploadId in ${text}`);
    return m[1];
  }

  /** ListParts: `[{partNumber, etag, size}]`. */
  async listParts(bucket, key, uploadId) {
    const { text } = await this.ok({ method: 'GET', bucket, key, query: { uploadId } });
    return [...text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map(([, p]) => ({
      partNumber: Number(/<PartNumber>(\d+)</.exec(p)[1]),
      etag: /<ETag>([^<]*)</.exec(p)[1].replace(/&quot;/g, '"'),
      size: Number(/<Size>(\d+)</.exec(p)[1]),
    }));
  }

  /**
   * A browser-form POST policy signed with SigV4, as the SDKs'
   * createPresignedPost build it: `{url, fields}`.
   */
  presignPost({ bucket, keyPrefix, conditions = [], fields = {}, expires = 3600 }) {
    const { amzDate, day } = amzDates();
    const credential = `${this.accessKey}/${this.scope(day)}`;
    const all = {
      ...fields,
      'x-amz-algorithm': 'AWS4-HMAC-SHA256',
      'x-amz-credential': credential,
      'x-amz-date': amzDate,
    };
    const policy = {
      expiration: new Date(Date.now() + expires * 1000).toISOString(),
      conditions: [
        { bucket },
        ['starts-with', '$key', keyPrefix],
        ...Object.entries(all).map(([k, v]) => ({ [k]: v })),
        ...conditions,
      ],
    };
    const b64 = Buffer.from(JSON.stringify(policy)).toString('base64');
    const sig = createHmac('sha256', this.signingKey(day)).update(b64).digest('hex');
    return {
      url: `${this.endpoint}/${bucket}`,
      fields: { key: `${keyPrefix}\${filename}`, ...all, policy: b64, 'x-amz-signature': sig },
    };
  }
}

const xmlEscape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** `[{AllowedOrigins, AllowedMethods, AllowedHeaders?, ExposeHeaders?, MaxAgeSeconds?, ID?}]` → XML */
export function corsXml(rules) {
  const el = (name, values) =>
    (values ?? [])
      .map((v) => {
        if (v === undefined || v === null) throw new Error(`corsXml: ${name} is ${v}`);
        return `<${name}>${xmlEscape(v)}</${name}>`;
      })
      .join('');
  const body = rules
    .map(
      (r) =>
        '<CORSRule>' +
        (r.ID ? el('ID', [r.ID]) : '') +
        el('AllowedOrigin', r.AllowedOrigins) +
        el('AllowedMethod', r.AllowedMethods) +
        el('AllowedHeader', r.AllowedHeaders) +
        el('ExposeHeader', r.ExposeHeaders) +
        (r.MaxAgeSeconds !== undefined ? el('MaxAgeSeconds', [r.MaxAgeSeconds]) : '') +
        '</CORSRule>',
    )
    .join('');
  return `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${body}</CORSConfiguration>`;
}
