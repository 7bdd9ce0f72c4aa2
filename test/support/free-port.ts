// Tests that must name addresses up front use the same helper as the chaos runs.

export { freePort } from '../../src/chaos/free-port.ts';
