// The dialog that asks for a reason before freezing the autoscaler (for every pool, or one). The
// reason is required: the next person to look at a frozen autoscaler will want to know why.

import { byId, setText } from './dom.js';

/**
 * @typedef {object} FreezeScope
 * @property {string} [pool] absent: every pool
 */

/**
 * @param {(scope: FreezeScope, reason: string) => Promise<void>} freeze sends the freeze; rejects with what went wrong
 * @param {(failure: unknown) => string} describeFailure the server's message and code, shown in the dialog
 *   (a 403 names the store key the signed-in user may not write)
 * @returns {{ open(scope: FreezeScope): void, close(): void }}
 */
export function createFreezeDialog(freeze, describeFailure) {
  const dialog = byId('freeze-dialog', HTMLDialogElement);
  const form = byId('freeze-form', HTMLFormElement);
  const title = byId('freeze-title', HTMLElement);
  const reason = byId('freeze-reason', HTMLTextAreaElement);
  const error = byId('freeze-error', HTMLElement);
  const confirm = /** @type {HTMLButtonElement} */ (form.querySelector('button[value="confirm"]'));
  /** @type {FreezeScope} */
  let scope = {};

  form.addEventListener('submit', (submitEvent) => {
    const submitter = /** @type {SubmitEvent} */ (submitEvent).submitter;
    if (!(submitter instanceof HTMLButtonElement) || submitter.value !== 'confirm') return; // Cancel closes the dialog.
    submitEvent.preventDefault();
    const text = reason.value.trim();
    if (text === '') {
      error.hidden = false;
      setText(error, 'Give a reason: the next person to look will want to know why.');
      reason.focus();
      return;
    }
    confirm.disabled = true;
    freeze(scope, text).then(
      () => dialog.close('frozen'),
      (/** @type {unknown} */ failure) => {
        error.hidden = false;
        setText(error, `Not frozen: ${describeFailure(failure)}`);
      },
    ).finally(() => {
      confirm.disabled = false;
    });
  });

  return {
    open(newScope) {
      scope = newScope;
      const target = newScope.pool === undefined ? 'every pool' : `pool ${newScope.pool}`;
      setText(title, `Freeze the autoscaler for ${target}`);
      setText(confirm, newScope.pool === undefined ? 'Freeze every pool' : `Freeze pool ${newScope.pool}`);
      reason.value = '';
      error.hidden = true;
      setText(error, '');
      dialog.showModal();
      reason.focus();
    },
    close() {
      if (dialog.open) dialog.close('cancel');
    },
  };
}
