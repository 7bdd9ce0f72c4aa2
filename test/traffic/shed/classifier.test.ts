// Classification: exemptions, operator rules in order, the client's header, the default.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, type ClassifierSettings } from '../../../src/traffic/shed/classifier.ts';

const SETTINGS: ClassifierSettings = {
  header: 'x-concord-priority',
  default: 'default',
  rules: [
    { pathPrefix: '/checkout', priority: 'critical' },
    { method: 'POST', path: '/batch', priority: 'sheddable' },
    { header: { name: 'x-client', value: 'crawler' }, priority: 'sheddable' },
    { header: { name: 'x-internal' }, priority: 'critical' },
  ],
  exempt: [{ path: '/healthz' }, { method: 'GET', pathPrefix: '/status/' }],
};

function of(method: string, path: string, headers: Record<string, string | string[]> = {}) {
  return classify({ method, path, headers }, SETTINGS);
}

test('exempt rules come first, then operator rules in order, then the header, then the default', () => {
  assert.equal(of('GET', '/healthz'), 'exempt');
  assert.equal(of('GET', '/healthz?verbose=1'), 'exempt', 'the query string is ignored');
  assert.equal(of('GET', '/status/db'), 'exempt');
  assert.equal(of('POST', '/status/db'), 'default', 'all conditions of a rule must hold');
  assert.equal(of('GET', '/checkout/cart', { 'x-concord-priority': 'sheddable' }), 'critical', 'a rule beats the header');
  assert.equal(of('post', '/batch'), 'sheddable', 'methods compare case-insensitively');
  assert.equal(of('GET', '/batch'), 'default');
  assert.equal(of('GET', '/x', { 'x-client': 'crawler' }), 'sheddable');
  assert.equal(of('GET', '/x', { 'x-client': 'browser' }), 'default');
  assert.equal(of('GET', '/x', { 'x-internal': '' }), 'critical', 'a rule without a value matches presence');
  assert.equal(of('GET', '/x', { 'x-concord-priority': ' Critical ' }), 'critical');
  assert.equal(of('GET', '/x', { 'x-concord-priority': ['sheddable', 'critical'] }), 'sheddable', 'the first of repeated headers');
  assert.equal(of('GET', '/x', { 'x-concord-priority': 'urgent' }), 'default', 'an unknown class falls back to the default');
  assert.equal(classify({ method: 'GET', path: '/', headers: {} }, { ...SETTINGS, default: 'sheddable' }), 'sheddable');
});
