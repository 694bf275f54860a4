/* Crypto market — live dashboard.
 *
 * Plain ES2020, no build step. Reads the snapshot contract served by the
 * dashboard (GET /api/snapshot once, then server-sent events on /api/events)
 * and renders it. Every number shown carries its raw JSON value in
 * `data-value` (String(v), or "" for null) so browser tests can check it.
 */
(function () {
  'use strict';

  const LWC = window.LightweightCharts;

  // ---------------------------------------------------------------- state --
  const state = {
    snapshot: null,        // last snapshot applied
    seq: null,             // its seq
    viaStream: false,      // at least one snapshot came through the event stream
    selected: null,        // coin_id chosen by the user (null: first coin)
    chartCoin: null,       // coin whose data is currently in the chart
    chartPrecision: null,
    chartHadData: false,   // the chart showed candles after the last update
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------ helpers --
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const raw = (v) => (typeof v === 'number' ? String(v) : '');
  const DASH = '—';

  /** Tiny element builder: h('td', {class: 'x', dataset: {value: '1'}}, 'text'). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'style') Object.assign(el.style, v);
        else if (k === 'text') el.textContent = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  function utcDateTime(ms) {
    if (!isNum(ms)) return DASH;
    const d = new Date(ms);
    if (Number.isNaN(d.getTime())) return DASH;
    return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
      `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} UTC`;
  }

  function utcTime(ms) {
    if (!isNum(ms)) return DASH;
    const d = new Date(ms);
    if (Number.isNaN(d.getTime())) return DASH;
    return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} UTC`;
  }

  function utcShort(ms) {
    if (!isNum(ms)) return DASH;
    const d = new Date(ms);
    if (Number.isNaN(d.getTime())) return DASH;
    return `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  }

  function fmtAge(ms) {
    if (!isNum(ms)) return DASH;
    const neg = ms < 0;
    const s = Math.abs(ms) / 1000;
    let out;
    if (s < 60) out = `${Math.round(s)} s`;
    else if (s < 3600) out = `${Math.floor(s / 60)} min`;
    else if (s < 86400) {
      const hrs = Math.floor(s / 3600);
      const mins = Math.floor((s % 3600) / 60);
      out = mins ? `${hrs} h ${mins} min` : `${hrs} h`;
    } else {
      const days = Math.floor(s / 86400);
      const hrs = Math.floor((s % 86400) / 3600);
      out = hrs ? `${days} d ${hrs} h` : `${days} d`;
    }
    return neg ? `in ${out}` : out;
  }

  /** Number of decimals that keeps ~5 significant digits for a price. */
  function pricePrecision(p) {
    if (!isNum(p) || p === 0) return 2;
    const a = Math.abs(p);
    if (a >= 1000) return 2;
    if (a >= 1) return 4;
    const lead = Math.floor(Math.log10(a)); // -1 for 0.1..1, -2 for 0.01..0.1
    return Math.min(10, 4 - lead);
  }

  const numFmtCache = new Map();
  function fmtNumber(v, decimals) {
    if (!isNum(v)) return DASH;
    let f = numFmtCache.get(decimals);
    if (!f) {
      f = new Intl.NumberFormat('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
      numFmtCache.set(decimals, f);
    }
    return f.format(v);
  }

  const fmtPrice = (p) => fmtNumber(p, pricePrecision(p));

  function fmtPct(v, signed) {
    if (!isNum(v)) return DASH;
    let s = (v * 100).toFixed(2);
    if (s === '-0.00') s = '0.00';
    if (signed && v > 0 && s !== '0.00') s = `+${s}`;
    return `${s}%`;
  }

  function fmtCorr(v) {
    if (!isNum(v)) return DASH;
    let s = v.toFixed(2);
    if (s === '-0.00') s = '0.00';
    return s;
  }

  const clamp01 = (x) => Math.max(0, Math.min(1, x));

  // Saturation points for the heatmap: a move of this size gets full colour.
  const RETURN_SCALE = { '1h': 0.02, '24h': 0.06, '7d': 0.15 };
  const HORIZONS = ['1h', '24h', '7d'];
  const VOL_HORIZONS = ['24h', '7d'];

  function returnColour(v, horizon) {
    if (!isNum(v) || v === 0) return '';
    const a = 0.12 + 0.68 * clamp01(Math.abs(v) / (RETURN_SCALE[horizon] || 0.05));
    return v > 0 ? `rgba(34, 197, 94, ${a.toFixed(3)})` : `rgba(239, 68, 68, ${a.toFixed(3)})`;
  }

  function volColour(v) {
    if (!isNum(v)) return '';
    const a = 0.08 + 0.55 * clamp01(v / 1.5); // 150% annualized vol = full colour
    return `rgba(168, 139, 250, ${a.toFixed(3)})`;
  }

  function corrColour(v) {
    if (!isNum(v)) return '';
    const a = 0.06 + 0.74 * clamp01(Math.abs(v));
    return v >= 0 ? `rgba(239, 68, 68, ${a.toFixed(3)})` : `rgba(59, 130, 246, ${a.toFixed(3)})`;
  }

  const SEVERITY_COLOUR = { info: '#60a5fa', warning: '#f59e0b', critical: '#ef4444' };
  const RULE_LABEL = { price_move: 'price move', zscore: 'z-score', volume_spike: 'volume spike', stale_feed: 'stale feed' };
  const RULE_MARK = { price_move: 'move', zscore: 'z', volume_spike: 'vol', stale_feed: 'stale' };
  const FRESHNESS = new Set(['ok', 'late', 'stale', 'unknown']);

  function alertMs(a) {
    if (isNum(a.ts_ms)) return a.ts_ms;
    if (typeof a.ts_event === 'string') {
      const t = Date.parse(a.ts_event);
      if (!Number.isNaN(t)) return t;
    }
    return null;
  }

  const coinsOf = (snap) => (snap && Array.isArray(snap.coins) ? snap.coins.filter((c) => c && typeof c.coin_id === 'string') : []);
  const obj = (v) => (v && typeof v === 'object' ? v : {});

  function selectedCoin(snap) {
    const coins = coinsOf(snap);
    if (!coins.length) return null;
    return coins.find((c) => c.coin_id === state.selected) || coins[0];
  }

  // ------------------------------------------------------------ header --
  function renderHeader(snap) {
    const until = $('until');
    until.textContent = isNum(snap.until) ? utcDateTime(snap.until) : 'no data yet';
    until.dataset.value = raw(snap.until);

    const updated = $('updated');
    updated.textContent = utcTime(snap.generated_at);
    updated.dataset.value = raw(snap.generated_at);
    updated.title = isNum(snap.generated_at) ? utcDateTime(snap.generated_at) : '';

    const seq = $('seq');
    seq.textContent = isNum(snap.seq) ? String(snap.seq) : DASH;
    seq.dataset.value = raw(snap.seq);
  }

  function renderErrors(snap) {
    const errors = Array.isArray(snap.errors) ? snap.errors.filter((e) => e !== null && e !== undefined && e !== '') : [];
    const box = $('errors');
    $('errors-list').replaceChildren(...errors.map((e) => h('li', { 'data-testid': 'error' }, String(e))));
    box.hidden = errors.length === 0;
  }

  function renderEmpty(snap) {
    const waiting = !isNum(snap.until);
    $('empty').hidden = !waiting;
    document.body.classList.toggle('waiting', waiting);
  }

  // --------------------------------------------------- freshness strip --
  function renderStrip(snap) {
    const coins = coinsOf(snap);
    const sel = selectedCoin(snap);
    const cells = coins.map((c) => {
      const fresh = FRESHNESS.has(c.freshness) ? c.freshness : 'unknown';
      const isSel = sel && sel.coin_id === c.coin_id;
      return h('button', {
        type: 'button',
        class: `cell fresh-${fresh}${isSel ? ' selected' : ''}`,
        'data-testid': 'freshness',
        'data-coin': c.coin_id,
        'data-state': fresh,
        'aria-pressed': isSel ? 'true' : 'false',
        title: `${c.coin_id}: ${fresh}` + (isNum(c.ts_event) ? ` — last event ${utcDateTime(c.ts_event)}` : ''),
      },
        h('span', { class: 'cell-top' },
          h('span', { class: 'coin' }, c.coin_id),
          h('span', { class: 'state' }, fresh)),
        h('span', { class: 'cell-price' },
          h('span', { 'data-testid': 'price', 'data-coin': c.coin_id, 'data-value': raw(c.price), class: 'price' }, fmtPrice(c.price)),
          h('span', { class: 'ccy' }, typeof c.vs_currency === 'string' ? c.vs_currency.toUpperCase() : '')),
        h('span', { class: 'cell-age' },
          'age ',
          h('span', { 'data-testid': 'age', 'data-coin': c.coin_id, 'data-value': raw(c.age_ms), class: 'age' }, fmtAge(c.age_ms))));
    });
    const strip = $('strip');
    const focused = strip.contains(document.activeElement) ? document.activeElement.dataset.coin : null;
    strip.replaceChildren(...cells);
    if (focused) {
      const again = cells.find((c) => c.dataset.coin === focused);
      if (again) again.focus();
    }
  }

  // ------------------------------------------------------- heatmap table --
  function renderReturns(snap) {
    const rows = coinsOf(snap).map((c) => {
      const r = obj(c.returns);
      const vol = obj(c.volatility);
      return h('tr', { 'data-coin': c.coin_id },
        h('th', { scope: 'row', class: 'coin-col' }, c.coin_id),
        HORIZONS.map((hz) => h('td', {
          'data-testid': 'return', 'data-coin': c.coin_id, 'data-horizon': hz, 'data-value': raw(r[hz]),
          class: isNum(r[hz]) ? 'num' : 'num null',
          style: { backgroundColor: returnColour(r[hz], hz) },
        }, fmtPct(r[hz], true))),
        VOL_HORIZONS.map((hz) => h('td', {
          'data-testid': 'volatility', 'data-coin': c.coin_id, 'data-horizon': hz, 'data-value': raw(vol[hz]),
          class: isNum(vol[hz]) ? 'num vol-col' : 'num vol-col null',
          style: { backgroundColor: volColour(vol[hz]) },
        }, fmtPct(vol[hz], false))));
    });
    if (!rows.length) rows.push(h('tr', { class: 'empty-row' }, h('td', { colspan: 6 }, 'No coins yet')));
    $('returns-body').replaceChildren(...rows);
  }

  // --------------------------------------------------------- correlation --
  function renderCorrelation(snap) {
    const corr = obj(snap.correlation);
    const names = Array.isArray(corr.coins) ? corr.coins.map((c) => String(c)) : [];
    const matrix = Array.isArray(corr.matrix) ? corr.matrix : [];

    const parts = [];
    if (corr.window) parts.push(`window ${corr.window}`);
    if (isNum(corr.returns)) parts.push(`${corr.returns} returns`);
    const caption = $('corr-caption');
    caption.replaceChildren(
      h('span', null, parts.length ? `Pearson correlation of 5-minute log returns — ${parts.join(', ')}` : "Pearson correlation of 5-minute log returns"),
      isNum(corr.returns) ? h('span', { hidden: true, 'data-testid': 'corr-returns', 'data-value': raw(corr.returns) }) : null);

    if (!names.length) {
      $('corr-head').replaceChildren();
      $('corr-body').replaceChildren(h('tr', { class: 'empty-row' }, h('td', null, 'Not enough data yet')));
      return;
    }
    $('corr-head').replaceChildren(h('tr', null, h('th', { scope: 'col' }), names.map((n) => h('th', { scope: 'col', title: n }, n.slice(0, 3).toUpperCase()))));
    $('corr-body').replaceChildren(...names.map((rowName, i) => {
      const row = Array.isArray(matrix[i]) ? matrix[i] : [];
      return h('tr', null,
        h('th', { scope: 'row' }, rowName),
        names.map((colName, j) => {
          const v = isNum(row[j]) ? row[j] : null;
          return h('td', {
            'data-testid': 'corr', 'data-row': rowName, 'data-col': colName, 'data-value': raw(v),
            class: v === null ? 'num null' : (i === j ? 'num diag' : 'num'),
            style: { backgroundColor: corrColour(v) },
            title: `${rowName} × ${colName}: ${fmtCorr(v)}`,
          }, fmtCorr(v));
        }));
    }));
  }

  // -------------------------------------------------------------- alerts --
  function renderAlerts(snap) {
    const alerts = Array.isArray(snap.alerts) ? snap.alerts.filter((a) => a && typeof a === 'object') : [];
    $('alerts-count').textContent = alerts.length ? `(${alerts.length})` : '';
    const items = alerts.map((a) => {
      const sev = SEVERITY_COLOUR[a.severity] ? a.severity : 'info';
      const ms = alertMs(a);
      return h('li', {
        class: `alert sev-${sev}`,
        'data-testid': 'alert',
        'data-alert-id': a.alert_id == null ? '' : String(a.alert_id),
        'data-coin': a.coin_id == null ? '' : String(a.coin_id),
        'data-severity': sev,
        title: typeof a.ts_event === 'string' ? a.ts_event : '',
      },
        h('div', { class: 'alert-head' },
          h('time', { class: 'alert-time', 'data-value': raw(a.ts_ms) }, utcShort(ms)),
          h('span', { class: 'alert-coin' }, a.coin_id == null ? '' : String(a.coin_id)),
          h('span', { class: 'alert-rule' }, (RULE_LABEL[a.rule] || String(a.rule || '')) + (a.window ? ` ${a.window}` : '')),
          h('span', { class: 'alert-sev' }, sev)),
        h('div', { class: 'alert-msg' }, a.message == null ? '' : String(a.message)),
        (isNum(a.observed) || isNum(a.threshold))
          ? h('div', { class: 'alert-nums' },
            'observed ', h('span', { class: 'alert-observed', 'data-value': raw(a.observed) }, fmtMetric(a.observed)),
            ' · threshold ', h('span', { class: 'alert-threshold', 'data-value': raw(a.threshold) }, fmtMetric(a.threshold)))
          : null);
    });
    if (!items.length) items.push(h('li', { class: 'alerts-empty' }, 'No alerts'));
    $('alerts').replaceChildren(...items);
  }

  function fmtMetric(v) {
    if (!isNum(v)) return DASH;
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  // -------------------------------------------------------------- health --
  const HEALTH = [
    { name: 'dead_letters', label: 'Dead letters', warnAbove: 0, level: 'bad' },
    { name: 'duplicates', label: 'Duplicates' },
    { name: 'alerts_raised', label: 'Alerts raised' },
    { name: 'events_processed', label: 'Events processed' },
    { name: 'consumer_lag', label: 'Consumer lag', warnAbove: 0, level: 'warn' },
    { name: 'commit_latency_ms', label: 'Commit latency', unit: 'ms', decimals: 1, warnAbove: 1000, level: 'warn' },
  ];

  function renderHealth(snap) {
    const hv = obj(snap.health);
    $('health').replaceChildren(...HEALTH.map((t) => {
      const v = isNum(hv[t.name]) ? hv[t.name] : null;
      let level = v === null ? 'unknown' : 'ok';
      if (v !== null && t.warnAbove !== undefined && v > t.warnAbove) level = t.level;
      const text = v === null ? DASH : fmtNumber(v, t.decimals !== undefined ? t.decimals : (Number.isInteger(v) ? 0 : 2));
      return h('div', { class: `tile tile-${level}` },
        h('div', { class: 'tile-label' }, t.label),
        h('div', { class: 'tile-value' },
          h('span', { 'data-testid': 'health', 'data-name': t.name, 'data-value': raw(v) }, text),
          t.unit ? h('span', { class: 'unit' }, ` ${t.unit}`) : null));
    }));
  }

  // --------------------------------------------------------------- chart --
  const chart = { api: null, candles: null, vol: null, markers: null };
  const CHART_BG = '#151b26';

  function initChart() {
    if (!LWC || typeof LWC.createChart !== 'function') {
      $('chart-empty').textContent = 'Chart library failed to load';
      return;
    }
    const api = LWC.createChart($('chart-canvas'), {
      autoSize: true,
      layout: {
        background: { type: LWC.ColorType ? LWC.ColorType.Solid : 'solid', color: CHART_BG },
        textColor: '#aab4c5',
        fontSize: 12,
        attributionLogo: true,
        panes: { separatorColor: '#2a3345', separatorHoverColor: 'rgba(120, 140, 170, 0.25)', enableResize: true },
      },
      grid: {
        vertLines: { color: 'rgba(120, 140, 170, 0.08)' },
        horzLines: { color: 'rgba(120, 140, 170, 0.08)' },
      },
      rightPriceScale: { borderColor: '#2a3345' },
      timeScale: { borderColor: '#2a3345', timeVisible: true, secondsVisible: false, rightOffset: 3 },
      crosshair: { mode: LWC.CrosshairMode ? LWC.CrosshairMode.Normal : 0 },
    });
    chart.api = api;
    chart.candles = api.addSeries(LWC.CandlestickSeries, {
      upColor: '#22c55e', downColor: '#ef4444', borderVisible: false,
      wickUpColor: '#22c55e', wickDownColor: '#ef4444',
    }, 0);
    chart.vol = api.addSeries(LWC.LineSeries, {
      color: '#a78bfa', lineWidth: 2,
      priceLineVisible: false,
      priceFormat: { type: 'custom', minMove: 0.0001, formatter: (v) => `${(v * 100).toFixed(1)}%` },
    }, 1);
    chart.markers = LWC.createSeriesMarkers(chart.candles, []);
    const panes = api.panes();
    if (panes.length > 1) {
      panes[0].setStretchFactor(3);
      panes[1].setStretchFactor(1);
    }
  }

  function cleanCandles(list) {
    if (!Array.isArray(list)) return [];
    const out = [];
    let last = -Infinity;
    for (const c of list) {
      if (!c || !isNum(c.time) || !isNum(c.open) || !isNum(c.high) || !isNum(c.low) || !isNum(c.close)) continue;
      if (c.time <= last) continue; // the library requires strictly ascending times
      last = c.time;
      out.push({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close });
    }
    return out;
  }

  function cleanLine(list) {
    if (!Array.isArray(list)) return [];
    const out = [];
    let last = -Infinity;
    for (const p of list) {
      if (!p || !isNum(p.time) || p.time <= last) continue;
      last = p.time;
      // a null value becomes a whitespace point, keeping the time axis aligned
      out.push(isNum(p.value) ? { time: p.time, value: p.value } : { time: p.time });
    }
    return out;
  }

  function buildMarkers(snap, coinId, candles) {
    if (!candles.length) return [];
    const first = candles[0].time;
    const lastT = candles[candles.length - 1].time;
    const alerts = Array.isArray(snap.alerts) ? snap.alerts : [];
    const out = [];
    for (const a of alerts) {
      if (!a || a.coin_id !== coinId) continue;
      const ms = alertMs(a);
      if (ms === null) continue;
      const time = Math.floor(ms / 3600000) * 3600;
      if (time < first || time > lastT) continue;
      const down = isNum(a.observed) && a.observed < 0 && a.rule === 'price_move';
      const up = isNum(a.observed) && a.observed > 0 && a.rule === 'price_move';
      out.push({
        time,
        position: down ? 'aboveBar' : (up ? 'belowBar' : 'aboveBar'),
        shape: down ? 'arrowDown' : (up ? 'arrowUp' : 'circle'),
        color: SEVERITY_COLOUR[a.severity] || SEVERITY_COLOUR.info,
        text: RULE_MARK[a.rule] || String(a.rule || ''),
        id: a.alert_id == null ? undefined : String(a.alert_id),
      });
    }
    out.sort((x, y) => x.time - y.time);
    return out;
  }

  function renderChart(snap) {
    const coin = selectedCoin(snap);
    const coinId = coin ? coin.coin_id : '';
    const box = $('chart');
    const candles = coin ? cleanCandles(coin.candles) : [];
    const vol = coin ? cleanLine(coin.volatility_series) : [];

    $('chart-title').textContent = coin
      ? `${coin.coin_id}${typeof coin.vs_currency === 'string' ? ' / ' + coin.vs_currency.toUpperCase() : ''}`
      : '';
    $('chart-empty').textContent = coin ? `No candles for ${coin.coin_id} yet` : 'Waiting for data';
    $('chart-empty').hidden = candles.length > 0;
    box.classList.toggle('no-data', candles.length === 0);

    if (chart.api) {
      const switched = state.chartCoin !== coinId;
      const lastPrice = candles.length ? candles[candles.length - 1].close : (coin ? coin.price : null);
      const precision = pricePrecision(lastPrice);
      if (precision !== state.chartPrecision) {
        chart.candles.applyOptions({ priceFormat: { type: 'price', precision, minMove: Math.pow(10, -precision) } });
        state.chartPrecision = precision;
      }
      chart.candles.setData(candles);
      chart.vol.setData(vol);
      chart.markers.setMarkers(buildMarkers(snap, coinId, candles));
      // A new coin (or the first data) starts from a full view; otherwise the
      // library keeps the user's zoom and scroll position across setData.
      if (switched || !state.chartHadData) {
        if (candles.length) chart.api.timeScale().fitContent();
      }
      state.chartHadData = candles.length > 0;
      state.chartCoin = coinId;
    }

    box.dataset.coin = coinId;
    box.dataset.candles = String(candles.length);
  }

  // ----------------------------------------------------------- snapshot --
  const SECTIONS = [renderHeader, renderErrors, renderEmpty, renderStrip, renderReturns, renderCorrelation, renderAlerts, renderHealth, renderChart];

  function apply(snap) {
    if (!snap || typeof snap !== 'object') return;
    state.snapshot = snap;
    const failures = [];
    for (const render of SECTIONS) {
      try {
        render(snap);
      } catch (err) {
        // Keep the rest of the page alive; show the problem rather than throw.
        failures.push(`${render.name}: ${err && err.message ? err.message : err}`);
      }
    }
    if (failures.length) {
      const list = $('errors-list');
      for (const f of failures) list.append(h('li', { class: 'render-error' }, `dashboard: ${f}`));
      $('errors').hidden = false;
      console.warn('dashboard render problems', failures);
    }
    state.seq = isNum(snap.seq) ? snap.seq : state.seq;
    document.body.dataset.seq = isNum(snap.seq) ? String(snap.seq) : '';
    if (isNum(snap.seq)) { lastApplied = Date.now(); tickUpdated(); }
  }

  function parse(text) {
    try {
      const v = JSON.parse(text);
      return v && typeof v === 'object' ? v : null;
    } catch (_) {
      return null;
    }
  }

  // ----------------------------------------------------- "x s ago" ticker --
  let lastApplied = null;
  function tickUpdated() {
    if (lastApplied === null) return;
    const s = Math.max(0, Math.round((Date.now() - lastApplied) / 1000));
    $('ago').textContent = `(${fmtAge(s * 1000)} ago)`;
  }
  setInterval(tickUpdated, 1000);

  // --------------------------------------------------------- connection --
  function setConnection(kind) {
    const labels = { connecting: 'connecting…', connected: 'live', reconnecting: 'reconnecting…', offline: 'disconnected — retrying' };
    const el = $('conn');
    el.className = `conn conn-${kind}`;
    el.dataset.state = kind;
    $('conn-text').textContent = labels[kind] || kind;
    document.body.dataset.connected = kind === 'connected' ? 'true' : 'false';
  }

  let source = null;
  let retryTimer = null;
  let retryDelay = 1000;

  function connect() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    if (typeof EventSource !== 'function') { setConnection('offline'); return; }
    const es = new EventSource('/api/events');
    source = es;
    es.addEventListener('open', () => {
      if (source !== es) return;
      retryDelay = 1000;
      setConnection('connected');
    });
    es.addEventListener('snapshot', (ev) => {
      if (source !== es) return;
      const snap = parse(ev.data);
      if (!snap) return;
      // The stream is ordered; always take it (a restarted server may reset seq).
      state.viaStream = true;
      if (document.body.dataset.connected !== 'true') setConnection('connected');
      apply(snap);
    });
    es.addEventListener('error', () => {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. an HTTP error status): retry ourselves.
        es.close();
        setConnection('offline');
        retryTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setConnection('reconnecting');
      }
    });
  }

  async function loadInitial() {
    try {
      const res = await fetch('/api/snapshot', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!res.ok) return;
      const snap = parse(await res.text());
      if (!snap) return;
      // Only useful if the stream has not already delivered something newer.
      if (state.viaStream && isNum(state.seq) && !(isNum(snap.seq) && snap.seq > state.seq)) return;
      apply(snap);
    } catch (_) {
      // network trouble: the event stream will bring data when it can
    }
  }

  // ------------------------------------------------------------- events --
  function select(coinId) {
    if (!coinId || coinId === state.selected) return;
    state.selected = coinId;
    if (state.snapshot) {
      try {
        renderStrip(state.snapshot);
        renderChart(state.snapshot);
      } catch (err) {
        console.warn('dashboard: selection failed', err);
      }
    }
  }

  $('strip').addEventListener('click', (ev) => {
    const cell = ev.target instanceof Element ? ev.target.closest('[data-testid="freshness"]') : null;
    if (cell) select(cell.dataset.coin);
  });
  $('alerts').addEventListener('click', (ev) => {
    const item = ev.target instanceof Element ? ev.target.closest('[data-testid="alert"]') : null;
    if (!item || !item.dataset.coin || !state.snapshot) return;
    if (coinsOf(state.snapshot).some((c) => c.coin_id === item.dataset.coin)) select(item.dataset.coin);
  });

  // --------------------------------------------------------------- boot --
  document.body.dataset.connected = 'false';
  try {
    initChart();
  } catch (err) {
    chart.api = null;
    $('chart-empty').textContent = 'Chart could not be created';
    console.warn('dashboard: chart init failed', err);
  }
  apply({ seq: null, generated_at: null, until: null, coins: [], correlation: null, alerts: [], health: {}, errors: [] });
  document.body.dataset.seq = '';
  setConnection('connecting');
  connect();
  loadInitial();

  // For debugging from the console (and the browser tests): the chart API.
  window.dashboard = { state, chart };
})();
