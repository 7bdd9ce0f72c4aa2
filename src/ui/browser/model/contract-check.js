// Checks that what the server sent has the shape of the contract (src/ui/api-types.ts) before the
// page draws it. A page that draws a half-understood overview shows wrong numbers with confidence;
// one that says "the server sent X where Y was expected" points at the version mismatch at once.
// Only what the page reads is checked; extra fields are fine (a newer server may add some).

/** @typedef {import('../../api-types.ts').Overview} Overview */
/** @typedef {import('../../api-types.ts').TimelineEntry} TimelineEntry */

/** Problems reported per document: past this, the rest is noise. */
const MAX_PROBLEMS = 10;

/**
 * @typedef {object} Checker
 * @property {string[]} problems
 */

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @param {string[]} problems
 * @param {string} path
 * @param {string} expected
 * @param {unknown} value
 */
function report(problems, path, expected, value) {
  if (problems.length < MAX_PROBLEMS) problems.push(`${path}: expected ${expected}, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
}

/** @type {Record<string, (value: unknown) => boolean>} */
const KINDS = {
  string: (value) => typeof value === 'string',
  number: (value) => typeof value === 'number' && Number.isFinite(value),
  boolean: (value) => typeof value === 'boolean',
  'string or null': (value) => value === null || typeof value === 'string',
  'number or null': (value) => value === null || (typeof value === 'number' && Number.isFinite(value)),
  array: (value) => Array.isArray(value),
  'object or null': (value) => value === null || isObject(value),
};

/**
 * Checks fields of an object: { name: kind }; a kind ending in '?' may be absent.
 * @param {string[]} problems
 * @param {string} path
 * @param {unknown} value
 * @param {Record<string, string>} fields
 * @returns {value is Record<string, unknown>}
 */
function checkFields(problems, path, value, fields) {
  if (!isObject(value)) {
    report(problems, path, 'an object', value);
    return false;
  }
  for (const [name, spec] of Object.entries(fields)) {
    const optional = spec.endsWith('?');
    const kind = optional ? spec.slice(0, -1) : spec;
    const field = value[name];
    if (optional && field === undefined) continue;
    const accepts = KINDS[kind];
    if (accepts !== undefined && !accepts(field)) report(problems, `${path}.${name}`, kind, field);
  }
  return true;
}

/**
 * @param {string[]} problems
 * @param {string} path
 * @param {unknown} value
 * @param {(problems: string[], path: string, item: unknown) => void} checkItem
 */
function checkArray(problems, path, value, checkItem) {
  if (!Array.isArray(value)) return;
  value.forEach((item, index) => checkItem(problems, `${path}[${index}]`, item));
}

/** @param {string[]} problems @param {string} path @param {unknown} pool */
function checkPool(problems, path, pool) {
  if (!checkFields(problems, path, pool, { name: 'string', balance: 'string', backends: 'array', shed: 'object or null', autoscale: 'object or null' })) return;
  checkArray(problems, `${path}.backends`, pool.backends, (inner, itemPath, backend) => {
    if (!checkFields(inner, itemPath, backend, { address: 'string', zone: 'string?', state: 'string', weight: 'number', slowStartFactor: 'number', inflight: 'number', latencyEwmaMs: 'number or null', lastCheck: 'object or null' })) return;
    if (isObject(backend.lastCheck)) checkFields(inner, `${itemPath}.lastCheck`, backend.lastCheck, { at: 'string', ok: 'boolean', detail: 'string' });
  });
  if (isObject(pool.shed) && checkFields(problems, `${path}.shed`, pool.shed, { algorithm: 'string', limit: 'number', inflight: 'number', queueLength: 'number', rejected: 'object or null', shedding: 'boolean' })) {
    checkFields(problems, `${path}.shed.rejected`, pool.shed.rejected, { critical: 'number', default: 'number', sheddable: 'number' });
  }
  if (isObject(pool.autoscale) && checkFields(problems, `${path}.autoscale`, pool.autoscale, { desired: 'number', actual: 'number', min: 'number', max: 'number', frozen: 'boolean', frozenBy: 'string?', frozenReason: 'string?', leader: 'string?', lastDecisions: 'array' })) {
    checkArray(problems, `${path}.autoscale.lastDecisions`, pool.autoscale.lastDecisions, (inner, itemPath, decision) => {
      if (checkFields(inner, itemPath, decision, { at: 'string', desired: 'number', reasons: 'array' }) && Array.isArray(decision.reasons)) {
        decision.reasons.forEach((reason, index) => { if (typeof reason !== 'string') report(inner, `${itemPath}.reasons[${index}]`, 'string', reason); });
      }
    });
  }
}

/**
 * What is wrong with an overview; empty when the page can draw it.
 * @param {unknown} value
 * @returns {string[]}
 */
export function overviewProblems(value) {
  /** @type {string[]} */
  const problems = [];
  if (!checkFields(problems, 'overview', value, { generatedAt: 'string', proxies: 'array', pools: 'array' })) return problems;
  if (checkFields(problems, 'overview.store', value.store, { members: 'array' })) {
    checkArray(problems, 'overview.store.members', /** @type {Record<string, unknown>} */ (value.store).members, (inner, path, member) => {
      if (checkFields(inner, path, member, { id: 'string', name: 'string', clientUrls: 'array', isLeader: 'boolean', isLearner: 'boolean' }) && Array.isArray(member.clientUrls)) {
        member.clientUrls.forEach((url, index) => { if (typeof url !== 'string') report(inner, `${path}.clientUrls[${index}]`, 'string', url); });
      }
    });
  }
  checkArray(problems, 'overview.proxies', value.proxies, (inner, path, proxy) => {
    checkFields(inner, path, proxy, { id: 'string', address: 'string', requestsTotal: 'number', requestsPerSecond: 'number', p50Ms: 'number or null', p99Ms: 'number or null' });
  });
  checkArray(problems, 'overview.pools', value.pools, checkPool);
  checkFields(problems, 'overview.frozen', value.frozen, { global: 'boolean', by: 'string?', reason: 'string?' });
  return problems;
}

/**
 * What is wrong with one timeline event; empty when the page can show it.
 * @param {unknown} value
 * @param {string} [path]
 * @returns {string[]}
 */
export function eventProblems(value, path = 'event') {
  /** @type {string[]} */
  const problems = [];
  checkFields(problems, path, value, { at: 'string', kind: 'string', pool: 'string?', backend: 'string?', summary: 'string' });
  return problems;
}

/**
 * What is wrong with an answer of /api/session, /api/login or /api/logout; empty when it is usable.
 * @param {unknown} value
 * @returns {string[]}
 */
export function sessionProblems(value) {
  /** @type {string[]} */
  const problems = [];
  checkFields(problems, 'session', value, { authRequired: 'boolean', user: 'string or null' });
  return problems;
}
