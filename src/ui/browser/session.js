// Where the page stands with the control plane's identities (docs/dashboard.md, "Identities"):
// it asks GET /api/session first; with the store's authentication off the dashboard just runs;
// with it on, the sign-in form shows until someone signs in. Any 401 later (the session expired,
// the control plane restarted) stops the dashboard and brings the form back; Sign out ends the
// session and forgets what the page drew. main.js runs the dashboard through the hooks.

import { ApiError, fetchSession, login, logout, onSessionEnded, RECONNECT_MAX_MS, UNAUTHENTICATED_STATUS } from './api-client.js';
import { createSignInView } from './sign-in-view.js';

/** @typedef {import('../api-types.ts').SessionInfo} SessionInfo */

/** A control plane from before identities has no /api/session: it is one without authentication. */
const NOT_FOUND_STATUS = 404;
const SESSION_ENDED_NOTE = 'Your session has ended. Sign in again to go on.';

/**
 * @typedef {object} SessionHooks
 * @property {(user: string | null) => void} run shows the dashboard and starts its live data (user: null with authentication off)
 * @property {() => void} stop stops everything that talks to the control plane and hides the dashboard
 * @property {() => void} forget forgets what the page holds and clears what it drew
 * @property {(detail: string) => void} unreachable GET /api/session failed and will be retried (the header says so)
 * @property {(text: string) => void} report a failure the person should see
 * @property {(error: unknown) => string} describe an error as the page words it (message and code)
 */

/**
 * A 401 on a request of the dashboard: the sign-in form has taken over (onSessionEnded), so the
 * failure needs no notice of its own.
 * @param {unknown} error
 */
export function endedTheSession(error) {
  return error instanceof ApiError && error.status === UNAUTHENTICATED_STATUS;
}

/**
 * @param {SessionHooks} hooks
 */
export function createSession(hooks) {
  /**
   * 'checking' until GET /api/session answers; 'open' when the store has authentication off;
   * 'signed-in'; 'signed-out' (only the form shows, and no request is made until someone signs in).
   * @type {'checking' | 'open' | 'signed-in' | 'signed-out'}
   */
  let phase = 'checking';
  /** @type {string | null} whose data the page holds: another person signing in starts from nothing */
  let dataOwner = null;

  const view = createSignInView({ signIn, signOut });

  /** @param {string} note why the form is shown ('' at the start) */
  function showSignIn(note) {
    hooks.stop();
    phase = 'signed-out';
    view.showIdentity(null);
    view.show(note);
  }

  /** @param {SessionInfo} session */
  function enter(session) {
    if (session.authRequired && session.user === null) {
      showSignIn('');
      return;
    }
    phase = session.authRequired ? 'signed-in' : 'open';
    if (dataOwner !== session.user) hooks.forget();
    dataOwner = session.user;
    view.hide();
    view.showIdentity(session.user);
    hooks.run(session.user);
  }

  /**
   * Retries with the stream's back-off (1 s doubling to 15 s) until the control plane answers.
   * @param {number} waitMs
   */
  async function check(waitMs) {
    try {
      enter(await fetchSession());
    } catch (error) {
      if (error instanceof ApiError && error.status === NOT_FOUND_STATUS) {
        enter({ authRequired: false, user: null });
        return;
      }
      hooks.unreachable(`${hooks.describe(error)}; retrying in ${Math.round(waitMs / 1000)} s`);
      setTimeout(() => void check(Math.min(waitMs * 2, RECONNECT_MAX_MS)), waitMs);
    }
  }

  /**
   * The form's submit: resolves once the dashboard runs; rejects with what to tell the person.
   * @param {string} user
   * @param {string} password
   */
  async function signIn(user, password) {
    /** @type {SessionInfo} */
    let session;
    try {
      session = await login(user, password);
    } catch (error) {
      throw new Error(hooks.describe(error));
    }
    if (session.authRequired && session.user === null) throw new Error('the control plane accepted the sign-in but reports nobody signed in; try again');
    enter(session);
  }

  /** The header's Sign out: ends the session on the server, then the form, with the data forgotten. */
  async function signOut() {
    try {
      await logout();
    } catch (error) {
      // A 401 here means the session had ended already: signed out all the same.
      if (!endedTheSession(error)) {
        hooks.report(`Could not sign out: ${hooks.describe(error)}`);
        return;
      }
    }
    showSignIn('Signed out.');
    hooks.forget();
    dataOwner = null;
  }

  onSessionEnded((error) => {
    if (phase !== 'signed-out') showSignIn(`Your session has ended (${error.message}). Sign in again to go on.`);
  });

  return {
    /** @param {number} firstWaitMs the first retry's wait, should the control plane not answer */
    start(firstWaitMs) {
      void check(firstWaitMs);
    },
    /** True while only the sign-in form shows: answers still on their way are not drawn. */
    get signedOut() {
      return phase === 'signed-out';
    },
    /**
     * The stream was refused, and EventSource does not say why: one GET /api/session tells a
     * session that ended (stop, show the form: no retries against a 401) from a control plane that
     * is away (retry, with the stream's back-off).
     * @returns {Promise<boolean>}
     */
    async mayStreamRetry() {
      try {
        const session = await fetchSession();
        if (session.authRequired && session.user === null && phase !== 'signed-out') showSignIn(SESSION_ENDED_NOTE);
      } catch {
        // The control plane is away (or predates identities): the stream's own back-off goes on.
      }
      return phase !== 'signed-out';
    },
  };
}
