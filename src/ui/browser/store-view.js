// The store's members: who leads, who is a learner, where clients reach each one.

import { el, setText, syncChildren } from './dom.js';

/** @typedef {import('../api-types.ts').StoreMember} StoreMember */

/** @param {StoreMember} member */
function roleOf(member) {
  if (member.isLeader) return { text: '★ leader', tone: 'good' };
  if (member.isLearner) return { text: 'learner (not voting)', tone: 'muted' };
  return { text: 'follower', tone: 'neutral' };
}

/**
 * @param {HTMLElement} tbody
 * @param {HTMLElement} emptyNote
 * @param {readonly StoreMember[]} members
 */
export function renderMembers(tbody, emptyNote, members) {
  emptyNote.hidden = members.length > 0;
  syncChildren(
    tbody,
    members,
    (member) => member.id,
    () => el('tr', {}, [el('th', { attrs: { scope: 'row' } }), el('td', { className: 'mono' }), el('td', { className: 'mono' }), el('td', {}, [el('span', { className: 'badge' })])]),
    (row, member) => {
      const [name, id, urls, role] = /** @type {HTMLElement[]} */ (Array.from(row.children));
      const look = roleOf(member);
      setText(/** @type {HTMLElement} */ (name), member.name === '' ? '(unnamed)' : member.name);
      setText(/** @type {HTMLElement} */ (id), member.id);
      setText(/** @type {HTMLElement} */ (urls), member.clientUrls.join(', '));
      const badge = /** @type {HTMLElement} */ (role?.firstElementChild);
      setText(badge, look.text);
      badge.dataset.tone = look.tone;
    },
  );
}
