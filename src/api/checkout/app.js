// The checkout page's script: plain browser JavaScript, served as a file (the Content-Security-Policy
// allows no inline script). Every request carries the account's API key; the live status is the
// purchase's events stream, read with fetch (EventSource cannot send an Authorization header).

const KEY_STORAGE = 'payonce-api-key';
const FINAL = new Set(['succeeded', 'failed']);
/** How long to wait before reconnecting a stream the API ended before the purchase finished. */
const RECONNECT_MS = 1000;

const $ = (id) => document.getElementById(id);
const embeddedKey = document.querySelector('meta[name="payonce-demo-key"]')?.getAttribute('content') ?? '';
let apiKey = embeddedKey || sessionStorage.getItem(KEY_STORAGE) || '';

function showError(message) {
  $('error').textContent = message;
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `checkout-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

function api(path, init = {}) {
  return fetch(path, { ...init, headers: { authorization: `Bearer ${apiKey}`, ...init.headers } });
}

async function errorOf(response) {
  const body = await response.json().catch(() => null);
  return `${response.status} ${body?.code ?? ''}: ${body?.message ?? response.statusText}`;
}

function purchaseFromLocation(location) {
  return location?.split('/').pop() ?? '';
}

/** Shows a purchase's status as it arrives, and its path so far (one line per status). */
function statusView(statusElement, timelineElement) {
  let last = '';
  timelineElement.replaceChildren();
  statusElement.textContent = '';
  return (purchase) => {
    if (purchase.status === last) return;
    last = purchase.status;
    statusElement.textContent = purchase.status;
    statusElement.dataset.status = purchase.status;
    const step = document.createElement('li');
    step.dataset.status = purchase.status;
    const time = new Date().toISOString().slice(11, 23);
    step.textContent = `${purchase.status} at ${time}`;
    if (purchase.failureReason) step.textContent += ` (${purchase.failureReason})`;
    timelineElement.append(step);
  };
}

/**
 * Follows a purchase's events stream until its final status, reconnecting when the API ends the
 * stream earlier (it caps a stream's life; the new one starts with the current status).
 */
async function follow(purchaseId, show) {
  for (;;) {
    const response = await api(`/payment/purchase/${purchaseId}/events`);
    if (!response.ok) {
      showError(`status stream: ${await errorOf(response)}`);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    let finished = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let end;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (!data) continue; // a keep-alive comment
        const purchase = JSON.parse(data.slice('data: '.length));
        show(purchase);
        finished ||= FINAL.has(purchase.status);
      }
    }
    if (finished) return;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

function purchaseBody() {
  return JSON.stringify({ userId: Number($('user').value), productId: Number($('product').value) });
}

function submit(idempotencyKey) {
  return api('/payment/purchase', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: purchaseBody(),
  });
}

async function pay() {
  showError('');
  $('pay').disabled = true;
  try {
    const response = await submit(newKey());
    if (response.status !== 202) {
      showError(`Pay: ${await errorOf(response)}`);
      return;
    }
    // The answer itself says queued; the stream then tells the rest (it may start further on).
    const accepted = await response.json();
    $('pay-id').textContent = accepted.purchaseId;
    $('pay-result').hidden = false;
    const show = statusView($('pay-status'), $('pay-timeline'));
    show(accepted);
    await follow(accepted.purchaseId, show);
  } catch (error) {
    showError(`Pay: ${error.message}`);
  } finally {
    $('pay').disabled = false;
  }
}

async function storm() {
  showError('');
  const count = Math.max(1, Math.min(200, Number($('storm-count').value) || 10));
  $('storm').disabled = true;
  try {
    // One key for all of them, as a client's retries of one purchase would carry.
    const key = newKey();
    const answers = await Promise.all(Array.from({ length: count }, () => submit(key)));
    const counts = new Map();
    const purchases = new Set();
    const chips = answers.map((answer) => {
      counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1);
      const location = answer.headers.get('location');
      if (location) purchases.add(purchaseFromLocation(location));
      const chip = document.createElement('li');
      chip.textContent = String(answer.status);
      chip.dataset.code = String(answer.status);
      return chip;
    });
    $('storm-codes').replaceChildren(...chips);
    $('storm-answers').textContent = [...counts]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${n} × ${status}`)
      .join(', ');
    $('storm-purchases').textContent = String(purchases.size);
    $('storm-result').hidden = false;
    const [purchaseId] = purchases;
    $('storm-id').textContent = purchaseId ?? 'none';
    if (!purchaseId) return;
    const show = statusView($('storm-status'), $('storm-timeline'));
    const accepted = answers.find((answer) => answer.status === 202);
    if (accepted) show(await accepted.json());
    await follow(purchaseId, show);
  } catch (error) {
    showError(`Storm: ${error.message}`);
  } finally {
    $('storm').disabled = false;
  }
}

function option(value, label) {
  const element = document.createElement('option');
  element.value = String(value);
  element.textContent = label;
  return element;
}

/** Loads the account's users and products; a refused key asks for another. */
async function start() {
  if (!apiKey) {
    $('key-section').hidden = false;
    return;
  }
  const [users, products] = await Promise.all([api('/user?limit=100'), api('/product?limit=100')]);
  if (users.status === 401 || products.status === 401) {
    sessionStorage.removeItem(KEY_STORAGE);
    showError('The API refused this key: enter another.');
    $('key-section').hidden = false;
    return;
  }
  if (!users.ok || !products.ok) {
    showError(`Could not load users and products: ${await errorOf(users.ok ? products : users)}`);
    return;
  }
  $('user').replaceChildren(...(await users.json()).map((user) => option(user.id, user.username)));
  $('product').replaceChildren(
    ...(await products.json()).map((product) =>
      option(product.id, `${product.name} · ${(product.price / 100).toFixed(2)}`),
    ),
  );
  $('key-section').hidden = true;
  $('checkout').hidden = false;
  $('storm-section').hidden = false;
  $('key-source').textContent = embeddedKey
    ? "Using the demo account's API key (npm start)."
    : 'Using the API key entered in this tab.';
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  apiKey = $('api-key').value.trim();
  sessionStorage.setItem(KEY_STORAGE, apiKey);
  showError('');
  void start();
});
$('pay').addEventListener('click', () => void pay());
$('storm').addEventListener('click', () => void storm());
void start();
