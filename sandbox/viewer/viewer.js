// The FieldCast viewer: plays a live session's HLS with hls.js, shows the pinned product's card
// when playback reaches the frame that carries the pin (an H.264 SEI message in the stream), lists
// the sales the sandbox pushes (server-sent events) and shows the session's state.
'use strict';

/** FieldCast's SEI user_data_unregistered UUID, as hls.js writes it. */
const FIELDCAST_UUID = 'f1e1dca5-7000-4a11-9e5e-0f1e1dca57ed';
/** SEI payload type of user_data_unregistered. */
const USER_DATA_UNREGISTERED = 5;
/** Wait before playing again after the player gave up. */
const RETRY_MS = 1000;
/** The badge's words for each state of the session. */
const STATES = {
  waiting: { badge: 'Starting soon', notice: 'The farmer has not gone live yet.' },
  live: { badge: 'Live', notice: '' },
  reconnecting: { badge: 'Reconnecting', notice: 'The farmer\u2019s connection dropped. Waiting for it\u2026' },
  ended: { badge: 'Ended', notice: 'This live has ended. Thank you for watching!' },
};

const $ = (id) => document.getElementById(id);
const video = $('video');
const sessionId = decodeURIComponent(location.pathname.split('/')[2] || '');
const base = `/watch/${encodeURIComponent(sessionId)}`;

/**
 * What the page did, for tests and for QA in the console: each card with the playback time of
 * its pin's frame (`frameTime`, from hls.js) and of its showing (`shownAt`, video.currentTime),
 * the same for its unpin (`unpinFrameTime`, `hiddenAt`), the sales shown, the states, errors.
 */
const log = (window.__fieldcast = { state: null, states: [], playing: false, cards: [], sales: [], errors: [] });

const products = new Map();
const sales = new Map();
let state = 'waiting';
let hls = null;

/** Pins in playback order: what is still to happen, what was already scheduled or ended. */
const pins = { timeline: [], scheduled: new Set(), ended: new Set(), current: null };

/** A price in minor units as the currency is written, e.g. 2500 CNY -> CN¥25.00. */
function money(minor, currency) {
  const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
  return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
}

function productTitle(id) {
  return products.get(id)?.title ?? id;
}

// ---- the session's state ----

function setState(next) {
  state = next;
  log.state = next;
  log.states.push({ state: next, at: performance.now() });
  const badge = $('badge');
  badge.dataset.state = next;
  badge.textContent = STATES[next].badge;
  showNotice(STATES[next].notice);
  if (next === 'live') {
    play();
  }
}

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

// ---- the player ----

function play() {
  if (hls) {
    return;
  }
  if (!window.Hls || !Hls.isSupported()) {
    showNotice('This browser cannot play the live stream (it needs Media Source Extensions).');
    log.errors.push('hls.js unavailable or unsupported');
    return;
  }
  hls = new Hls();
  hls.on(Hls.Events.FRAG_PARSING_USERDATA, (_event, data) => readPins(data.samples));
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) {
      return;
    }
    log.errors.push(`${data.type}: ${data.details}`);
    hls.destroy();
    hls = null;
    restartTimeline();
    setTimeout(() => state === 'live' && play(), RETRY_MS);
  });
  hls.loadSource(`${base}/index.m3u8`);
  hls.attachMedia(video);
  // A muted video may start by itself; otherwise the viewer presses play.
  video.play().catch(() => {});
}

video.addEventListener('playing', () => {
  log.playing = true;
});

// ---- pins, in step with the picture ----

/** Schedules each FieldCast pin or unpin that hls.js found in a fragment at its frame's time. */
function readPins(samples) {
  for (const sample of samples) {
    if (sample.payloadType !== USER_DATA_UNREGISTERED || sample.uuid !== FIELDCAST_UUID) {
      continue;
    }
    let message;
    try {
      message = JSON.parse(sample.userData);
    } catch {
      log.errors.push(`unreadable pin message: ${sample.userData}`);
      continue;
    }
    if (message.fc !== 1 || message.session !== sessionId) {
      continue;
    }
    // Each message is repeated on the next keyframes for viewers who join late.
    const key = `${message.type}:${message.pin}`;
    if (pins.scheduled.has(key) || (message.type === 'pin' && pins.ended.has(message.pin))) {
      continue;
    }
    pins.scheduled.add(key);
    const entry = { ...message, at: sample.pts };
    const later = pins.timeline.findIndex((e) => e.at > entry.at);
    pins.timeline.splice(later < 0 ? pins.timeline.length : later, 0, entry);
  }
}

/** A new player has a new timeline: pins still open show again from their repeats. */
function restartTimeline() {
  pins.timeline = [];
  pins.scheduled.clear();
}

/** Runs for every frame shown: applies the pins whose frame playback has reached. */
function onFrame() {
  const now = video.currentTime;
  while (pins.timeline.length && pins.timeline[0].at <= now) {
    applyPin(pins.timeline.shift(), now);
  }
  video.requestVideoFrameCallback(onFrame);
}

function applyPin(entry, now) {
  if (entry.type === 'unpin') {
    pins.ended.add(entry.pin);
    if (pins.current?.pin === entry.pin) {
      endCard({ unpinT: entry.t, unpinFrameTime: entry.at, hiddenAt: now });
    }
    return;
  }
  if (entry.type !== 'pin' || pins.current?.pin === entry.pin) {
    return; // not a pin, or the card shown (seen again by a new player)
  }
  if (pins.current) {
    // A new pin ends the one shown.
    endCard({ unpinFrameTime: entry.at, hiddenAt: now });
  }
  const record = { pin: entry.pin, product: entry.product, t: entry.t, frameTime: entry.at, shownAt: now };
  log.cards.push(record);
  pins.current = { pin: entry.pin, product: entry.product, record };
  renderCard();
}

function endCard(fields) {
  Object.assign(pins.current.record, fields);
  pins.current = null;
  renderCard();
}

function renderCard() {
  const card = $('card');
  if (!pins.current) {
    card.hidden = true;
    return;
  }
  const product = products.get(pins.current.product);
  $('card-title').textContent = productTitle(pins.current.product);
  $('card-price').textContent = product ? `${money(product.price_minor, product.currency)} / ${product.unit}` : '';
  $('card-stock').textContent = product ? `${Math.max(product.stock, 0)} left` : '';
  card.dataset.product = pins.current.product;
  card.hidden = false;
}

// ---- sales and the catalog, pushed by the sandbox ----

function addSale(sale) {
  if (sales.has(sale.id)) {
    return; // sent again after a reconnect
  }
  sales.set(sale.id, sale);
  log.sales.push(sale.id);
  renderSales();
}

function renderSales() {
  const list = $('sales');
  list.replaceChildren(
    ...[...sales.values()].reverse().map((sale) => {
      const item = document.createElement('li');
      item.dataset.sale = sale.id;
      const what = document.createElement('span');
      what.textContent = `${sale.quantity} \u00d7 ${productTitle(sale.product_id)}`;
      const amount = document.createElement('span');
      amount.className = 'amount';
      amount.textContent = money(sale.quantity * sale.unit_price_minor, sale.currency);
      item.append(what, amount);
      return item;
    }),
  );
  $('no-sales').hidden = sales.size > 0;
}

function updateProduct(product) {
  products.set(product.id, product);
  renderCard();
}

function listen() {
  const events = new EventSource(`${base}/events`);
  const on = (name, handle) => events.addEventListener(name, (e) => handle(JSON.parse(e.data)));
  on('session', (session) => {
    $('title').textContent = session.title;
    document.title = `${session.title} \u00b7 FieldCast live`;
    setState(session.state);
  });
  on('state', (change) => setState(change.state));
  on('products', (all) => {
    all.forEach(updateProduct);
    renderSales();
  });
  on('product', updateProduct);
  on('sale', addSale);
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED) {
      log.errors.push('the sandbox closed the event stream');
      showNotice('This live session cannot be found.');
    }
  });
}

listen();
video.requestVideoFrameCallback(onFrame);
