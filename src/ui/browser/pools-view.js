// One card per pool: its autoscaler (desired vs actual, frozen or not and by whom, the last
// decisions and why), its load shedding (limit, in flight, queue, rejections by priority) and its
// backends (state, weight and slow-start ramp, in flight, latency, last check, drain/undrain).

import { el, part, setAttr, setText, syncChildren } from './dom.js';
import { backendStateLook, drainActionFor } from './model/backend-state.js';
import { formatAge, formatCount, formatMs, formatPercent, formatTimeUtc } from './model/format.js';

/** @typedef {import('../api-types.ts').PoolOverview} PoolOverview */
/** @typedef {import('../api-types.ts').BackendOverview} BackendOverview */
/** @typedef {import('../api-types.ts').AutoscaleOverview} AutoscaleOverview */
/** @typedef {import('../api-types.ts').ShedOverview} ShedOverview */

/** Decisions listed per pool, newest first. */
const DECISIONS_SHOWN = 5;

/**
 * What the operator's buttons do; the view only reports the click.
 * @typedef {object} PoolActions
 * @property {(pool: string) => void} freezePool opens the freeze dialog for one pool
 * @property {(pool: string) => void} unfreezePool
 * @property {(pool: string, address: string, action: 'drain' | 'undrain') => void} drainBackend
 * @property {(key: string) => boolean} isBusy whether an action with this key is on its way
 * @property {(area: string) => string} failureIn why the last action in this area (autoscaleArea,
 *   backendsArea) failed, shown beside its buttons; '' when it did not
 */

/**
 * @typedef {object} PoolContext
 * @property {number} nowMs the server's current time
 * @property {boolean} globalFrozen
 * @property {PoolActions} actions
 */

/** @param {string} pool @param {string} address @param {'drain' | 'undrain'} action */
export function drainKey(pool, address, action) {
  return `${action}:${pool}:${address}`;
}

/** @param {string} pool */
export function freezeKey(pool) {
  return `freeze:${pool}`;
}

/**
 * Where a failed action's message is shown: beside the buttons that sent it, because a person who
 * pressed Drain far down the page may not see the notices at its top.
 * @param {string} pool
 */
export function autoscaleArea(pool) {
  return `autoscale:${pool}`;
}

/** @param {string} pool */
export function backendsArea(pool) {
  return `backends:${pool}`;
}

/**
 * @param {HTMLElement} container
 * @param {HTMLElement} emptyNote
 * @param {readonly PoolOverview[]} pools
 * @param {PoolContext} context
 */
export function renderPools(container, emptyNote, pools, context) {
  emptyNote.hidden = pools.length > 0;
  syncChildren(container, pools, (pool) => pool.name, (pool) => createPoolCard(pool, context.actions), (card, pool) => updatePoolCard(card, pool, context));
}

/** @param {string} label @param {string} className */
function fact(label, className) {
  return el('div', {}, [el('dt', { text: label }), el('dd', { className })]);
}

/**
 * @param {PoolOverview} pool
 * @param {PoolActions} actions
 */
function createPoolCard(pool, actions) {
  const titleId = `pool-title-${pool.name}`;
  const freezeButton = el('button', { className: 'freeze-pool', attrs: { type: 'button' } });
  freezeButton.addEventListener('click', () => {
    if (freezeButton.dataset.action === 'unfreeze') actions.unfreezePool(pool.name);
    else actions.freezePool(pool.name);
  });
  const autoscalePanel = el('div', { className: 'panel autoscale' }, [
    el('h4', { text: 'Autoscaler' }),
    el('p', { className: 'badge autoscale-state' }),
    el('dl', { className: 'facts autoscale-facts' }, [fact('Desired', 'desired'), fact('Actual', 'actual'), fact('Bounds', 'bounds'), fact('Leader', 'leader')]),
    freezeButton,
    el('p', { className: 'action-error autoscale-error' }),
    el('h5', { className: 'decisions-title', text: 'Last decisions (newest first)' }),
    el('ol', { className: 'decisions' }),
  ]);
  const shedPanel = el('div', { className: 'panel shed' }, [
    el('h4', { text: 'Load shedding' }),
    el('p', { className: 'badge shed-state' }),
    el('dl', { className: 'facts shed-facts' }, [
      fact('Algorithm', 'algorithm'), fact('Limit', 'limit'), fact('In flight', 'inflight'), fact('Queue', 'queue'),
      fact('Rejected, critical', 'rejected-critical'), fact('Rejected, default', 'rejected-default'), fact('Rejected, sheddable', 'rejected-sheddable'),
    ]),
  ]);
  const headings = ['Backend', 'Zone', 'State', 'Weight', 'Slow start', 'In flight', 'Latency (EWMA)', 'Last check', 'Action'];
  const table = el('table', { className: 'data backends' }, [
    el('caption', { text: `Backends of pool ${pool.name}` }),
    el('thead', {}, [el('tr', {}, headings.map((text) => el('th', { text, attrs: { scope: 'col' } })))]),
    el('tbody', { className: 'backend-rows' }),
  ]);
  return el('section', { className: 'pool', attrs: { 'aria-labelledby': titleId } }, [
    el('header', { className: 'pool-header' }, [el('h3', { attrs: { id: titleId }, text: `Pool ${pool.name}` }), el('span', { className: 'muted balance' })]),
    el('div', { className: 'panels' }, [autoscalePanel, shedPanel]),
    table,
    el('p', { className: 'action-error backends-error' }),
  ]);
}

/**
 * @param {HTMLElement} card
 * @param {PoolOverview} pool
 * @param {PoolContext} context
 */
function updatePoolCard(card, pool, context) {
  setText(part(card, '.balance'), `balancing: ${pool.balance}`);
  updateAutoscale(part(card, '.autoscale'), pool.name, pool.autoscale, context);
  updateShed(part(card, '.shed'), pool.shed);
  showFailure(part(card, '.backends-error'), context.actions.failureIn(backendsArea(pool.name)));
  syncChildren(part(card, '.backend-rows'), pool.backends, (backend) => backend.address, (backend) => createBackendRow(pool.name, backend, context.actions), (row, backend) => updateBackendRow(row, pool.name, backend, context));
}

/**
 * @param {HTMLElement} panel
 * @param {string} poolName
 * @param {AutoscaleOverview | null} autoscale
 * @param {PoolContext} context
 */
function updateAutoscale(panel, poolName, autoscale, context) {
  const badge = part(panel, '.autoscale-state');
  const facts = part(panel, '.autoscale-facts');
  const button = /** @type {HTMLButtonElement} */ (part(panel, '.freeze-pool'));
  const decisions = part(panel, '.decisions');
  const decisionsTitle = part(panel, '.decisions-title');
  for (const element of [facts, button, decisions, decisionsTitle]) element.hidden = autoscale === null;
  showFailure(part(panel, '.autoscale-error'), autoscale === null ? '' : context.actions.failureIn(autoscaleArea(poolName)));
  if (autoscale === null) {
    setText(badge, 'Not autoscaled: a fixed set of backends');
    badge.dataset.tone = 'muted';
    return;
  }
  if (autoscale.frozen) {
    const who = autoscale.frozenBy === undefined ? '' : ` by ${autoscale.frozenBy}`;
    const why = autoscale.frozenReason === undefined ? '' : `: ${autoscale.frozenReason}`;
    setText(badge, `❄ Frozen${who}${why}`);
    badge.dataset.tone = 'warn';
  } else {
    const direction = autoscale.desired > autoscale.actual ? ' (scaling out)' : autoscale.desired < autoscale.actual ? ' (scaling in)' : '';
    setText(badge, `▶ Active${direction}`);
    badge.dataset.tone = 'good';
  }
  setText(part(facts, '.desired'), String(autoscale.desired));
  setText(part(facts, '.actual'), String(autoscale.actual));
  setText(part(facts, '.bounds'), `${autoscale.min} to ${autoscale.max}`);
  setText(part(facts, '.leader'), autoscale.leader ?? 'none (no controller leads)');
  // A pool frozen only through the global switch is unfrozen there; its own button freezes it too.
  const offersUnfreeze = autoscale.frozen && !context.globalFrozen;
  const action = offersUnfreeze ? 'unfreeze' : 'freeze';
  button.dataset.action = action;
  setText(button, offersUnfreeze ? 'Unfreeze pool' : 'Freeze pool…');
  setAttr(button, 'aria-label', offersUnfreeze ? `Unfreeze the autoscaler of pool ${poolName}` : `Freeze the autoscaler of pool ${poolName}`);
  button.disabled = context.actions.isBusy(freezeKey(poolName));
  const newestFirst = autoscale.lastDecisions.slice(-DECISIONS_SHOWN).reverse();
  syncChildren(
    decisions,
    newestFirst,
    (decision) => `${decision.at}|${decision.desired}|${decision.reasons.join('|')}`,
    () => el('li', {}, [el('time'), el('span', { className: 'decision-desired' }), el('span', { className: 'decision-reasons' })]),
    (item, decision) => {
      const [time, desired, reasons] = /** @type {HTMLElement[]} */ (Array.from(item.children));
      setText(/** @type {HTMLElement} */ (time), formatTimeUtc(decision.at));
      setAttr(/** @type {HTMLElement} */ (time), 'datetime', decision.at);
      setText(/** @type {HTMLElement} */ (desired), ` desired ${decision.desired}: `);
      setText(/** @type {HTMLElement} */ (reasons), decision.reasons.length === 0 ? 'no reason given' : decision.reasons.join('; '));
    },
  );
}

/**
 * @param {HTMLElement} element
 * @param {string} failure '' hides it
 */
function showFailure(element, failure) {
  element.hidden = failure === '';
  setText(element, failure);
}

/**
 * @param {HTMLElement} panel
 * @param {ShedOverview | null} shed
 */
function updateShed(panel, shed) {
  const badge = part(panel, '.shed-state');
  const facts = part(panel, '.shed-facts');
  facts.hidden = shed === null;
  if (shed === null) {
    setText(badge, 'No load shedding configured');
    badge.dataset.tone = 'muted';
    return;
  }
  setText(badge, shed.shedding ? '⚠ Shedding: refusing some requests' : '✓ Admitting every request');
  badge.dataset.tone = shed.shedding ? 'bad' : 'good';
  setText(part(facts, '.algorithm'), shed.algorithm);
  setText(part(facts, '.limit'), formatCount(shed.limit));
  setText(part(facts, '.inflight'), formatCount(shed.inflight));
  setText(part(facts, '.queue'), formatCount(shed.queueLength));
  setText(part(facts, '.rejected-critical'), formatCount(shed.rejected.critical));
  setText(part(facts, '.rejected-default'), formatCount(shed.rejected.default));
  setText(part(facts, '.rejected-sheddable'), formatCount(shed.rejected.sheddable));
}

/**
 * @param {string} poolName
 * @param {BackendOverview} backend
 * @param {PoolActions} actions
 */
function createBackendRow(poolName, backend, actions) {
  const button = el('button', { className: 'drain', attrs: { type: 'button' } });
  button.addEventListener('click', () => actions.drainBackend(poolName, backend.address, button.dataset.action === 'undrain' ? 'undrain' : 'drain'));
  const rampBar = el('progress', { attrs: { max: '1', 'aria-hidden': 'true' } });
  return el('tr', {}, [
    el('th', { className: 'mono', attrs: { scope: 'row' }, text: backend.address }),
    el('td', { className: 'zone' }),
    el('td', {}, [el('span', { className: 'badge state' })]),
    el('td', { className: 'num weight' }),
    el('td', { className: 'ramp' }, [rampBar, el('span', { className: 'ramp-text' })]),
    el('td', { className: 'num inflight' }),
    el('td', { className: 'num latency' }),
    el('td', { className: 'last-check' }),
    el('td', {}, [button]),
  ]);
}

/**
 * @param {HTMLElement} row
 * @param {string} poolName
 * @param {BackendOverview} backend
 * @param {PoolContext} context
 */
function updateBackendRow(row, poolName, backend, context) {
  const look = backendStateLook(backend.state);
  const state = part(row, '.state');
  setText(state, `${look.symbol} ${look.label}`);
  setAttr(state, 'title', look.meaning);
  state.dataset.tone = look.tone;
  setText(part(row, '.zone'), backend.zone ?? '—');
  setText(part(row, '.weight'), String(backend.weight));
  const ramping = backend.slowStartFactor < 1;
  const bar = /** @type {HTMLProgressElement} */ (part(row, 'progress'));
  bar.value = Math.min(1, Math.max(0, backend.slowStartFactor));
  bar.hidden = !ramping;
  setText(part(row, '.ramp-text'), ramping ? `ramping, ${formatPercent(backend.slowStartFactor)}` : 'full weight');
  setText(part(row, '.inflight'), formatCount(backend.inflight));
  setText(part(row, '.latency'), formatMs(backend.latencyEwmaMs));
  const check = backend.lastCheck;
  const checkCell = part(row, '.last-check');
  setText(checkCell, check === null ? 'not checked yet' : `${check.ok ? '✓ passed' : '✗ failed'} ${formatAge(context.nowMs, Date.parse(check.at))}: ${check.detail}`);
  checkCell.dataset.tone = check === null ? 'muted' : check.ok ? 'good' : 'bad';
  const action = drainActionFor(backend.state);
  const button = /** @type {HTMLButtonElement} */ (part(row, '.drain'));
  button.dataset.action = action;
  setText(button, action === 'drain' ? 'Drain' : 'Undrain');
  setAttr(button, 'aria-label', `${action === 'drain' ? 'Drain' : 'Undrain'} backend ${backend.address} of pool ${poolName}`);
  button.disabled = context.actions.isBusy(drainKey(poolName, backend.address, action));
}
