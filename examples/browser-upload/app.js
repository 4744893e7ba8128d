// Browser upload straight to a Preflight (or Amazon S3) bucket with a
// presigned POST. No build step, no dependencies.
//
// XMLHttpRequest rather than fetch, because only XHR reports upload
// progress. Note: listening to upload progress makes the browser send a CORS
// preflight (OPTIONS) first, so the bucket's CORS rule must allow POST.

const $ = (id) => document.getElementById(id);

/** `{url, fields}` from the pasted JSON, or an Error saying what is wrong. */
function readPresigned(text) {
  let post;
  try {
    post = JSON.parse(text);
  } catch (e) {
    throw new Error(`The presigned POST is not valid JSON: ${e.message}`);
  }
  if (!post || typeof post.url !== 'string' || !post.fields || typeof post.fields !== 'object') {
    throw new Error('The presigned POST must look like {"url": "...", "fields": {...}}.');
  }
  if (!('key' in post.fields)) throw new Error('The presigned POST has no "key" field.');
  return post;
}

/** The S3 error text from an XML error body, e.g. "EntityTooLarge: Your proposed upload ...". */
function s3ErrorText(status, body) {
  const doc = new DOMParser().parseFromString(body || '', 'application/xml');
  const code = doc.querySelector('Error > Code')?.textContent;
  const message = doc.querySelector('Error > Message')?.textContent;
  if (code) return `S3 error ${status} ${code}: ${message ?? ''}`.trim();
  return `HTTP ${status}${body ? `\n${body}` : ''}`;
}

/** The object's URL: path-style, with each key segment encoded. */
function objectUrl(base, key) {
  return `${base.replace(/\/+$/, '')}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function setProgress(fraction) {
  const pct = Math.round(fraction * 100);
  $('progress').value = pct;
  $('percent').textContent = `${pct}%`;
}

function showError(text) {
  $('percent').textContent = 'failed';
  $('error').textContent = text;
  $('error').hidden = false;
  $('result').hidden = true;
}

function showResult(url) {
  $('result').replaceChildren('Uploaded: ', Object.assign(document.createElement('a'), { href: url, textContent: url }));
  $('result').hidden = false;
  $('error').hidden = true;
}

function upload(post, endpoint, file) {
  // The policy allows any key under its prefix; name the object after the
  // file here, which works the same on S3 and on every S3-compatible server.
  const key = post.fields.key.replace('${filename}', file.name);
  const form = new FormData();
  for (const [name, value] of Object.entries(post.fields)) form.append(name, name === 'key' ? key : value);
  form.append('file', file); // S3 ignores fields after the file: it goes last

  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', endpoint);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) setProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        setProgress(1);
        // With success_action_status=201 S3 answers with XML naming the key.
        const doc = xhr.responseText ? new DOMParser().parseFromString(xhr.responseText, 'application/xml') : null;
        const storedKey = doc?.querySelector('PostResponse > Key')?.textContent;
        showResult(objectUrl(endpoint, storedKey && !storedKey.includes('${filename}') ? storedKey : key));
      } else {
        showError(s3ErrorText(xhr.status, xhr.responseText));
      }
      resolve();
    });
    xhr.addEventListener('error', () => {
      // The browser hides the reason from scripts; its console has it.
      showError(
        `The upload did not reach the page's JavaScript: a network error, or the bucket's CORS ` +
          `configuration does not allow POST from ${location.origin}. The browser console says which.`,
      );
      resolve();
    });
    xhr.send(form);
  });
}

$('presigned').addEventListener('input', () => {
  try {
    $('endpoint').value = readPresigned($('presigned').value).url;
  } catch {
    /* reported on submit */
  }
});

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('error').hidden = true;
  $('result').hidden = true;
  setProgress(0);
  let post;
  try {
    post = readPresigned($('presigned').value);
  } catch (e) {
    showError(e.message);
    return;
  }
  const file = $('file').files[0];
  if (!file) {
    showError('Pick a file first.');
    return;
  }
  const endpoint = $('endpoint').value.trim() || post.url;
  $('upload').disabled = true;
  try {
    await upload(post, endpoint, file);
  } finally {
    $('upload').disabled = false;
  }
});
