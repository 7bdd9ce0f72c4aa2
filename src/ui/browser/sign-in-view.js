// The sign-in form (shown when the store has authentication on and nobody is signed in) and the
// header's "Signed in as NAME" with its Sign out button. The view only reports what the person did;
// main.js talks to the API and decides what the page shows.
//
// The password is read from its field into the sign-in request and nowhere else: the field is
// cleared once the answer is in, and the page keeps no copy (no storage, no URL, no variable that
// outlives the request).

import { byId, setText } from './dom.js';

/**
 * @typedef {object} SignInView
 * @property {(note: string) => void} show shows the form (the rest of the page is main.js's to hide), with why it is shown
 * @property {() => void} hide
 * @property {(user: string | null) => void} showIdentity the header's "Signed in as NAME"; null hides it
 */

/**
 * @param {object} handlers
 * @param {(user: string, password: string) => Promise<void>} handlers.signIn resolves when signed in; rejects with what to tell the person
 * @param {() => Promise<void>} handlers.signOut settles when the sign-out is done or has failed (main.js reports which)
 * @returns {SignInView}
 */
export function createSignInView(handlers) {
  const section = byId('sign-in', HTMLElement);
  const form = byId('sign-in-form', HTMLFormElement);
  const note = byId('sign-in-note', HTMLElement);
  const error = byId('sign-in-error', HTMLElement);
  const userField = byId('sign-in-user', HTMLInputElement);
  const passwordField = byId('sign-in-password', HTMLInputElement);
  const submit = byId('sign-in-button', HTMLButtonElement);
  const identity = byId('identity', HTMLElement);
  const signedInAs = byId('signed-in-as', HTMLElement);
  const signOutButton = byId('sign-out-button', HTMLButtonElement);

  /** @param {string} text empty hides the error */
  const showError = (text) => {
    error.hidden = text === '';
    setText(error, text);
  };

  form.addEventListener('submit', (submitEvent) => {
    // Always: a native submit would leave the page (and the script's handling) behind.
    submitEvent.preventDefault();
    if (submit.disabled) return;
    const user = userField.value.trim();
    if (user === '' || passwordField.value === '') {
      showError('Give a user name and a password.');
      (user === '' ? userField : passwordField).focus();
      return;
    }
    submit.disabled = true;
    showError('');
    handlers.signIn(user, passwordField.value).then(
      () => { passwordField.value = ''; },
      (/** @type {unknown} */ failure) => {
        passwordField.value = '';
        showError(`Not signed in: ${failure instanceof Error ? failure.message : String(failure)}`);
        passwordField.focus();
      },
    ).finally(() => {
      submit.disabled = false;
    });
  });
  signOutButton.addEventListener('click', () => {
    signOutButton.disabled = true;
    handlers.signOut().finally(() => {
      signOutButton.disabled = false;
    });
  });

  return {
    show(text) {
      setText(note, text);
      note.hidden = text === '';
      showError('');
      passwordField.value = '';
      section.hidden = false;
      (userField.value === '' ? userField : passwordField).focus();
    },
    hide() {
      section.hidden = true;
      showError('');
    },
    showIdentity(user) {
      identity.hidden = user === null;
      setText(signedInAs, user === null ? '' : `Signed in as ${user}`);
    },
  };
}
