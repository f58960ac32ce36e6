// Corridor hub dashboard. Plain JavaScript, no libraries, nothing loaded from elsewhere:
// a snapshot from /api/state every second, live events from /api/events, and a
// payment's path from /api/payments/{uetr}, each under the page's own path (a dashboard
// that shows several hubs serves the others at /hubs/{index}/). Charts on canvas; the
// sequence diagram in SVG.
'use strict';

(function () {
  const POLL_MS = 1000;
  const LOG_LINES_MAX = 40;
  const TOKENS_MAX = 80;
  const TOKEN_MS = 900;
  const COLORS = {
    'pacs.008': '#4cc2ff', 'pacs.002': '#c792ea', 'pacs.004': '#ffd166',
    'camt.056': '#ff9f43', 'camt.029': '#f78fb3', 'camt.053': '#9fb0c2',
    ACK: '#4ee08a', NAK: '#ff6b6b',
  };
  // What each tracker step is: who to whom, and the message that carries it.
  const STEPS = {
    submitted: ['sender', 'hub', 'pacs.008'],
    acknowledged: ['hub', 'sender', 'ACK'],
    delivered: ['hub', 'receiver', 'pacs.008'],
    status_reported: ['receiver', 'hub', 'pacs.002'],
    settled: ['hub', 'hub', 'settlement'],
    released: ['hub', 'hub', 'reservation released'],
    status_delivered: ['hub', 'sender', 'pacs.002'],
    returned: ['receiver', 'hub', 'pacs.004'],
    return_delivered: ['hub', 'sender', 'pacs.004'],
    recall_requested: ['sender', 'hub', 'camt.056'],
    recall_delivered: ['hub', 'receiver', 'camt.056'],
    recall_answered: ['receiver', 'hub', 'camt.029'],
    recall_answer_delivered: ['hub', 'sender', 'camt.029'],
  };

  const $ = (id) => document.getElementById(id);
  // The page's folder: '/' for the first hub, '/hubs/1/' for the next.
  const BASE = window.location.pathname.replace(/[^/]*$/, '');
  let hubBic = '';
  let accepted = 0;
  let refused = 0;
  const participants = new Map(); // bic -> element
  const tokens = [];

  function escapeText(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    }[c]));
  }

  function shorten(text, max) {
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  function clockTime(unixMs) {
    const d = new Date(unixMs);
    const pad = (n, w) => String(n).padStart(w || 2, '0');
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }

  // ---- participants -------------------------------------------------------------

  // A participant's card: its BIC, then what the network gave it (its country and the
  // currencies of its positions at the hub, which appear once it is funded), then its
  // session. The directory's name is the card's tooltip.
  function participantElement(p) {
    let element = participants.get(p.bic);
    if (!element) {
      element = document.createElement('div');
      element.className = 'participant';
      element.setAttribute('data-bic', p.bic);
      element.setAttribute('data-connected', 'false');
      const bicLine = document.createElement('div');
      bicLine.className = 'bic';
      bicLine.textContent = p.bic;
      const placeLine = document.createElement('div');
      placeLine.className = 'place muted';
      const state = document.createElement('div');
      state.className = 'state';
      state.textContent = 'offline';
      element.append(bicLine, placeLine, state);
      $('participants').append(element);
      participants.set(p.bic, element);
    }
    element.title = p.name || '';
    element.querySelector('.place').textContent = [p.country].concat(p.currencies || []).join(' · ');
    return element;
  }

  function setConnected(bic, connected) {
    const element = participants.get(bic);
    if (!element) return;
    element.setAttribute('data-connected', connected ? 'true' : 'false');
    element.querySelector('.state').textContent = connected ? 'connected' : 'offline';
  }

  // ---- snapshot -----------------------------------------------------------------

  // The tabs to the other hubs this dashboard shows (none when it shows one).
  function applyTabs(hubs) {
    const nav = $('hubs');
    nav.hidden = !hubs || hubs.length < 2;
    if (nav.hidden) return;
    nav.replaceChildren(...hubs.map((h) => {
      const link = document.createElement('a');
      link.href = h.path;
      link.textContent = h.name;
      link.setAttribute('data-current', h.current ? 'true' : 'false');
      return link;
    }));
  }

  function applyDown(body) {
    applyTabs(body.hubs);
    const banner = $('hub-down');
    banner.hidden = false;
    banner.textContent = body.error || 'the hub is down';
    document.body.setAttribute('data-hub-down', 'true');
  }

  // Each link: the peer network's link identity and name, its session, the swap line
  // (the link's position at this hub, in this hub's currency, and its cap) and what
  // waits for it.
  function applyLinks(links, identity) {
    $('links-panel').hidden = !links || links.length === 0;
    $('link-identity').textContent = identity ? 'this network is ' + identity.name + ' (' + identity.bic + ')' : '';
    $('links').tBodies[0].replaceChildren(...(links || []).map((l) => {
      const tr = row(
        [l.link, l.name + ' (' + l.peer_currency + ')', l.up ? 'up' : 'down',
          l.settled_net_text + ' ' + l.currency, l.reserved_out_text + ' / ' + l.reserved_in_text + ' ' + l.currency, l.cap_text + ' ' + l.currency, l.queued],
        [false, false, false, true, true, true, true]);
      tr.setAttribute('data-link', l.link);
      tr.setAttribute('data-up', l.up ? 'true' : 'false');
      tr.setAttribute('data-queued', String(l.queued));
      tr.children[2].classList.add('session');
      return tr;
    }));
  }

  function applyState(state) {
    hubBic = state.hub;
    $('hub-down').hidden = true;
    document.body.removeAttribute('data-hub-down');
    applyTabs(state.hubs);
    applyLinks(state.links, state.link_identity);
    $('hub-bic').textContent = state.hub;
    $('hub-name').textContent = state.hub_name && state.hub_name !== state.hub ? state.hub_name : '';
    $('settlement-model').textContent = 'settlement: ' + state.settlement_model;
    for (const p of state.participants) {
      participantElement(p);
      setConnected(p.bic, p.connected);
    }
    // Counters only grow: a snapshot older than the events seen keeps the larger.
    accepted = Math.max(accepted, state.messages.accepted_total);
    refused = Math.max(refused, state.messages.refused_total);
    $('messages-total').textContent = String(accepted);
    $('refused-total').textContent = String(refused);
    const counters = $('counters').tBodies[0];
    counters.replaceChildren(...state.messages.by_type.map((t) => row([t.type, t.accepted, t.refused], [false, true, true])));
    const positions = $('positions').tBodies[0];
    positions.replaceChildren(...state.positions.map((p) => row(
      [p.participant + (p.suspended ? ' (suspended)' : ''), p.currency, p.liquidity_text, p.reserved_text, p.available_text, p.settled_net_text],
      [false, false, true, true, true, true])));
    const fx = $('fx-positions');
    fx.tBodies[0].replaceChildren(...state.fx_positions.map((l) => row([l.pair, l.currency, l.settled_net_text], [false, false, true])));
    fx.hidden = state.fx_positions.length === 0;
    const series = state.throughput.per_second.map((s) => s.messages);
    const recent = series.slice(-6, -1);
    $('throughput-now').textContent = recent.length ? (recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(1) : '0';
    drawBars($('throughput-chart'), series, state.throughput.axis, '#4cc2ff', 'msg/s');
    const latency = state.latency;
    const figure = (label, value) => '<span>' + label + ' <b>' + (value === null || value === undefined ? '–' : escapeText(value) + ' ms') + '</b></span>';
    $('latency-figures').innerHTML = figure('p50', latency.p50_ms) + figure('p90', latency.p90_ms) + figure('max', latency.max_ms);
    drawBars($('latency-chart'), latency.samples.map((s) => s.ms), latency.axis, '#c792ea', 'ms');
    applyReconciliation(state.reconciliation);
    layoutFlow();
  }

  function row(cells, numeric) {
    const tr = document.createElement('tr');
    cells.forEach((cell, i) => {
      const td = document.createElement('td');
      td.textContent = String(cell);
      if (numeric[i]) {
        td.className = 'num';
        if (String(cell).startsWith('-')) td.classList.add('negative');
      }
      tr.append(td);
    });
    return tr;
  }

  function applyReconciliation(report) {
    const box = $('reconciliation');
    if (!report) {
      box.removeAttribute('data-clean');
      box.textContent = 'none yet';
      return;
    }
    box.setAttribute('data-clean', report.clean ? 'true' : 'false');
    const verdict = report.clean
      ? 'Clean: the hub and every bank agree'
      : report.breaks.length + ' break(s): the records differ';
    box.innerHTML = '<div class="verdict">' + escapeText(verdict) + '</div>' +
      '<div>' + escapeText(report.payments_checked) + ' payments checked across ' +
      escapeText(report.participants_checked) + ' participants, ' +
      escapeText(report.payments_in_transit) + ' in transit</div>' +
      '<pre>' + escapeText(report.text || '') + '</pre>';
  }

  async function poll() {
    try {
      const response = await fetch(BASE + 'api/state', { cache: 'no-store' });
      if (response.ok) {
        applyState(await response.json());
      } else if (response.status === 503) {
        applyDown(await response.json());
      }
    } catch (error) {
      setLive(false);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  // ---- charts -------------------------------------------------------------------

  // The axis (its top and its three lines' labels) comes with the snapshot: the hub
  // picks a top whose half is round too, so that no two lines read the same.
  function drawBars(canvas, values, axis, color, unit) {
    const ctx = canvas.getContext('2d');
    const width = canvas.width;
    const height = canvas.height;
    ctx.clearRect(0, 0, width, height);
    const max = Math.max(1, axis.top);
    const left = 56;
    const bottom = height - 20;
    ctx.strokeStyle = '#2c3a4a';
    ctx.fillStyle = '#9fb0c2';
    ctx.font = '16px sans-serif';
    ctx.lineWidth = 1;
    [0, 0.5, 1].forEach((fraction, line) => {
      const y = bottom - fraction * (bottom - 10);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(width, y);
      ctx.stroke();
      ctx.fillText(axis.labels[line], 4, y + 5);
    });
    ctx.fillText(unit, 4, height - 2);
    if (values.length === 0) return;
    const step = (width - left) / values.length;
    ctx.fillStyle = color;
    values.forEach((v, i) => {
      const h = (Math.min(v, max) / max) * (bottom - 10);
      ctx.fillRect(left + i * step + 1, bottom - h, Math.max(1, step - 2), h);
    });
  }

  // ---- live message flow ----------------------------------------------------------

  const layout = { hub: { x: 320, y: 210 }, banks: new Map() };

  function layoutFlow() {
    const canvas = $('flow');
    const bics = Array.from(participants.keys()).sort();
    const cx = canvas.width / 2;
    const cy = canvas.height / 2;
    const radius = Math.min(cx, cy) - 50;
    layout.hub = { x: cx, y: cy };
    layout.banks.clear();
    bics.forEach((bic, i) => {
      const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, bics.length);
      layout.banks.set(bic, { x: cx + radius * Math.cos(angle), y: cy + radius * Math.sin(angle) });
    });
  }

  function addToken(from, to, label, delay) {
    if (!layout.banks.has(from) && from !== 'hub') return;
    if (!layout.banks.has(to) && to !== 'hub') return;
    if (tokens.length >= TOKENS_MAX) tokens.shift();
    tokens.push({ from, to, label, start: performance.now() + (delay || 0) });
  }

  function point(name) {
    return name === 'hub' ? layout.hub : layout.banks.get(name);
  }

  function drawFlow(now) {
    const canvas = $('flow');
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#2c3a4a';
    for (const p of layout.banks.values()) {
      ctx.beginPath();
      ctx.moveTo(layout.hub.x, layout.hub.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = 'bold 18px sans-serif';
    ctx.fillStyle = '#4cc2ff';
    ctx.beginPath();
    ctx.arc(layout.hub.x, layout.hub.y, 34, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = '#000';
    ctx.fillText('HUB', layout.hub.x, layout.hub.y);
    for (const [bic, p] of layout.banks) {
      const connected = participants.get(bic).getAttribute('data-connected') === 'true';
      ctx.fillStyle = connected ? '#4ee08a' : '#ff6b6b';
      ctx.beginPath();
      ctx.arc(p.x, p.y, 14, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = '#f2f5f8';
      ctx.font = 'bold 16px monospace';
      ctx.fillText(bic.slice(0, 8), p.x, p.y + (p.y < layout.hub.y ? -26 : 28));
    }
    ctx.font = 'bold 15px sans-serif';
    for (let i = tokens.length - 1; i >= 0; i--) {
      const token = tokens[i];
      const t = (now - token.start) / TOKEN_MS;
      if (t > 1) {
        tokens.splice(i, 1);
        continue;
      }
      if (t < 0) continue;
      const a = point(token.from);
      const b = point(token.to);
      if (!a || !b) continue;
      const x = a.x + (b.x - a.x) * t;
      const y = a.y + (b.y - a.y) * t;
      const color = COLORS[token.label] || '#f2f5f8';
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(x, y, 7, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText(token.label, x, y - 16);
    }
    requestAnimationFrame(drawFlow);
  }

  function log(className, html) {
    const list = $('flow-log');
    const item = document.createElement('li');
    item.className = className;
    item.innerHTML = html;
    list.prepend(item);
    while (list.children.length > LOG_LINES_MAX) list.lastChild.remove();
  }

  function uetrLink(uetr) {
    return uetr ? ' <span class="uetr" data-uetr="' + escapeText(uetr) + '">' + escapeText(uetr.slice(0, 8)) + '…</span>' : '';
  }

  function onEvent(event) {
    const time = clockTime(event.unix_ms);
    switch (event.kind) {
      case 'session_opened':
      case 'session_closed': {
        const opened = event.kind === 'session_opened';
        setConnected(event.participant, opened);
        log('session', escapeText(time + ' ' + event.participant + (opened ? ' connected' : ' disconnected')));
        break;
      }
      case 'accepted':
        accepted += 1;
        $('messages-total').textContent = String(accepted);
        addToken(event.sender, 'hub', event.type, 0);
        addToken('hub', event.receiver, event.type, TOKEN_MS);
        log('accepted', escapeText(time + ' ' + event.type + ' ' + event.sender + ' → ' + event.receiver + ' ISN ' + event.isn + ' OSN ' + event.osn) + uetrLink(event.uetr));
        break;
      case 'refused':
        refused += 1;
        $('refused-total').textContent = String(refused);
        addToken('hub', event.sender, 'NAK', 0);
        log('refused', escapeText(time + ' NAK ' + (event.type || 'message') + ' from ' + event.sender + (event.reason ? ' (' + event.reason + ')' : '')));
        break;
      case 'acked':
        addToken('hub', event.participant, 'ACK', 0);
        break;
      case 'delivered':
      case 'lagged':
        break;
      default:
        break;
    }
  }

  function setLive(live) {
    const status = $('live-status');
    status.setAttribute('data-live', live ? 'true' : 'false');
    status.textContent = live ? 'live' : 'reconnecting…';
  }

  function listen() {
    const source = new EventSource(BASE + 'api/events');
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    source.onmessage = (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        // A malformed event is skipped; the next snapshot corrects the counters.
      }
    };
  }

  // ---- payment search and its sequence diagram -------------------------------------

  async function search(uetr) {
    const sequence = $('sequence');
    const status = $('search-status');
    sequence.replaceChildren();
    sequence.removeAttribute('data-uetr');
    sequence.removeAttribute('data-error');
    $('payment-summary').replaceChildren();
    drawMessages('', []);
    uetr = uetr.trim();
    if (!uetr) {
      status.textContent = 'Type a UETR first.';
      return;
    }
    status.textContent = 'Looking for ' + uetr + '…';
    try {
      const response = await fetch(BASE + 'api/payments/' + encodeURIComponent(uetr), { cache: 'no-store' });
      const body = await response.json();
      if (!response.ok) {
        status.textContent = body.error || ('error ' + response.status);
        sequence.setAttribute('data-error', status.textContent);
        return;
      }
      status.textContent = '';
      drawSequence(body);
      drawMessages(body.payment.uetr, body.messages);
    } catch (error) {
      status.textContent = 'The hub did not answer: ' + error;
      sequence.setAttribute('data-error', status.textContent);
    }
  }

  function drawSequence(body) {
    const p = body.payment;
    $('payment-summary').innerHTML = '<b>' + escapeText(p.uetr) + '</b>: ' + escapeText(p.sender) + ' → ' +
      escapeText(p.receiver) + ', ' + escapeText(p.instructed_amount) +
      (p.exchange_rate ? ' at ' + escapeText(p.exchange_rate) + ' = ' + escapeText(p.amount) : '') +
      ', status <b>' + escapeText(p.status || 'pending') + (p.reason_code ? ' ' + escapeText(p.reason_code) : '') + '</b>' +
      (p.settled ? ', settled' : '') + (p.returned ? ', returned' : '');
    const lanes = { sender: 170, hub: 560, receiver: 950 };
    const names = { sender: p.sender, hub: 'HUB ' + (body.hub || hubBic), receiver: p.receiver };
    const top = 70;
    const rowHeight = 64;
    const height = top + rowHeight * body.steps.length + 30;
    const first = body.steps.length ? body.steps[0].time_unix_ms : 0;
    let svg = '<svg viewBox="0 0 1120 ' + height + '" role="img" aria-label="the payment\'s path">';
    for (const [lane, x] of Object.entries(lanes)) {
      svg += '<line x1="' + x + '" y1="' + (top - 10) + '" x2="' + x + '" y2="' + (height - 10) + '" stroke="#2c3a4a" stroke-width="3"/>';
      svg += '<text x="' + x + '" y="30" fill="#f2f5f8" font-size="22" font-weight="bold" text-anchor="middle">' + escapeText(names[lane]) + '</text>';
      svg += '<text x="' + x + '" y="52" fill="#9fb0c2" font-size="16" text-anchor="middle">' + lane + '</text>';
    }
    body.steps.forEach((step, i) => {
      const [from, to, carried] = STEPS[step.step] || ['hub', 'hub', ''];
      const y = top + rowHeight * i + 36;
      const x1 = lanes[from];
      const x2 = lanes[to];
      const color = COLORS[carried] || '#ffd166';
      const elapsed = '+' + (step.time_unix_ms - first) + ' ms';
      svg += '<g data-step="' + escapeText(step.step) + '">';
      svg += '<title>' + escapeText(step.detail) + '</title>';
      svg += '<text x="8" y="' + (y + 6) + '" fill="#9fb0c2" font-size="15">' + escapeText(clockTime(step.time_unix_ms)) + '</text>';
      svg += '<text x="8" y="' + (y + 24) + '" fill="#9fb0c2" font-size="13">' + escapeText(elapsed) + '</text>';
      if (x1 === x2) {
        svg += '<rect x="' + (x1 - 14) + '" y="' + (y - 14) + '" width="28" height="28" rx="6" fill="' + color + '"/>';
        svg += '<text x="' + (x1 + 24) + '" y="' + (y + 6) + '" fill="#f2f5f8" font-size="18">' + escapeText(shorten(step.step + ': ' + step.detail, 46)) + '</text>';
      } else {
        const dir = x2 > x1 ? 1 : -1;
        svg += '<line x1="' + x1 + '" y1="' + y + '" x2="' + (x2 - dir * 12) + '" y2="' + y + '" stroke="' + color + '" stroke-width="4"/>';
        svg += '<polygon points="' + x2 + ',' + y + ' ' + (x2 - dir * 16) + ',' + (y - 9) + ' ' + (x2 - dir * 16) + ',' + (y + 9) + '" fill="' + color + '"/>';
        svg += '<text x="' + ((x1 + x2) / 2) + '" y="' + (y - 10) + '" fill="#f2f5f8" font-size="18" text-anchor="middle">' + escapeText(step.step + ' · ' + carried) + '</text>';
      }
      svg += '</g>';
    });
    svg += '</svg>';
    const sequence = $('sequence');
    sequence.innerHTML = svg;
    sequence.setAttribute('data-uetr', p.uetr);
  }

  // ---- each message of the payment as ISO 20022 XML, on click -----------------------

  // Counts the XML requests, so that only the answer to the last click is shown.
  let xmlRequests = 0;

  function clearXml() {
    const view = $('message-xml');
    view.hidden = true;
    view.textContent = '';
    for (const name of ['data-message-id', 'data-unavailable', 'data-error']) view.removeAttribute(name);
  }

  function drawMessages(uetr, messages) {
    xmlRequests += 1;
    clearXml();
    const list = $('payment-messages');
    list.replaceChildren();
    for (const m of messages || []) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'message-button';
      button.setAttribute('data-message-id', m.message_id);
      button.setAttribute('data-type', m.type);
      button.textContent = m.type + '  ' + m.sender + ' → ' + m.receiver + '  · XML';
      button.title = 'message id ' + m.message_id;
      button.addEventListener('click', () => showXml(uetr, m.message_id));
      list.appendChild(button);
    }
  }

  // The XML (or why there is none) goes in as text: never parsed as markup.
  async function showXml(uetr, messageId) {
    const request = ++xmlRequests;
    clearXml();
    const view = $('message-xml');
    view.hidden = false;
    view.textContent = 'Loading ' + messageId + '…';
    let shown;
    try {
      const response = await fetch(BASE + 'api/payments/' + encodeURIComponent(uetr) + '/messages/' +
        encodeURIComponent(messageId), { cache: 'no-store' });
      const body = await response.json();
      if (!response.ok) {
        shown = { error: body.error || ('error ' + response.status) };
      } else if (typeof body.xml === 'string') {
        shown = { xml: body.xml };
      } else {
        shown = { unavailable: body.xml_unavailable || 'Corridor cannot write this message as XML' };
      }
    } catch (error) {
      shown = { error: 'The hub did not answer: ' + error };
    }
    if (request !== xmlRequests) return;
    view.textContent = shown.xml || shown.unavailable || shown.error;
    if (shown.unavailable) view.setAttribute('data-unavailable', shown.unavailable);
    if (shown.error) view.setAttribute('data-error', shown.error);
    view.setAttribute('data-message-id', messageId);
  }

  function start() {
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      search($('search-uetr').value);
    });
    $('flow-log').addEventListener('click', (event) => {
      const target = event.target.closest('.uetr');
      if (!target) return;
      $('search-uetr').value = target.getAttribute('data-uetr');
      search(target.getAttribute('data-uetr'));
    });
    layoutFlow();
    requestAnimationFrame(drawFlow);
    poll();
    listen();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
