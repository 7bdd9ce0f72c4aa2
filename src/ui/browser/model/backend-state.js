// How each backend health state looks: a word and a symbol besides the colour (tone), so the state
// reads the same to someone who cannot tell red from green, and in a screenshot printed in grey.

/** @typedef {import('../../api-types.ts').BackendState} BackendState */
/** @typedef {'good' | 'bad' | 'warn' | 'muted'} Tone */

/** @type {Readonly<Record<BackendState, { label: string, symbol: string, tone: Tone, meaning: string }>>} */
export const BACKEND_STATE_LOOK = {
  healthy: { label: 'healthy', symbol: '✓', tone: 'good', meaning: 'passes its checks and takes traffic' },
  unhealthy: { label: 'unhealthy', symbol: '✗', tone: 'bad', meaning: 'failed its active checks; no traffic' },
  ejected: { label: 'ejected', symbol: '⊘', tone: 'bad', meaning: 'ejected by outlier detection for a while' },
  draining: { label: 'draining', symbol: '↓', tone: 'warn', meaning: 'takes no new requests; in-flight ones finish' },
  drained: { label: 'drained', symbol: '■', tone: 'muted', meaning: 'out of rotation, nothing in flight' },
  unknown: { label: 'unknown', symbol: '?', tone: 'muted', meaning: 'not checked yet, or its health data is stale' },
};

/**
 * The look of a state; a state this page does not know (a newer server) reads as itself, muted.
 * @param {string} state
 */
export function backendStateLook(state) {
  return Object.hasOwn(BACKEND_STATE_LOOK, state)
    ? BACKEND_STATE_LOOK[/** @type {BackendState} */ (state)]
    : { label: state, symbol: '?', tone: /** @type {Tone} */ ('muted'), meaning: 'a state this page does not know' };
}

/**
 * Which operator action a backend offers: a draining or drained backend can be put back, any
 * other can be drained.
 * @param {string} state
 * @returns {'drain' | 'undrain'}
 */
export function drainActionFor(state) {
  return state === 'draining' || state === 'drained' ? 'undrain' : 'drain';
}
