// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium, through playwright-core).
// Everything here takes a base URL and hooks, so the same checks run against the stub control plane
// (test/ui/dashboard.test.ts) and against a real `concord up` (where the hooks send requests through
// the proxy and read the freeze key back with etcdctl).
//
// Every wait is bounded (DEFAULT_WAIT_MS unless told otherwise) and fails with what it waited for.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
/** Flags this machine needs (no sandbox as root, no GPU, nothing that phones home). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** How long one step may wait for the page. Generous: the machine is shared and slow at times. */
export const DEFAULT_WAIT_MS = 15_000;

/**
 * The little of the DOM that the functions run inside the page use. The project's types have no DOM
 * library, and those functions are serialized into the page, so they reach the document through
 * `(globalThis as unknown as InPage).document` (the cast is erased; the page sees globalThis.document).
 */
export interface InPage {
  document: {
    querySelector(selector: string): { textContent: string | null } | null;
    querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }>;
    getElementById(id: string): { textContent: string | null } | null;
    activeElement: { getAttribute(name: string): string | null } | null;
  };
}

export interface ChromiumSession {
  context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** Starts Chromium with a fresh profile directory (removed on close). */
export async function launchChromium(): Promise<ChromiumSession> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'concord-chromium-'));
  try {
    // Playwright passes the profile directory itself (--user-data-dir), hence a persistent context.
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1400, height: 1000 },
      timeout: 60_000,
    });
    return {
      context,
      async close() {
        await context.close().catch(() => {});
        await rm(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * A page with its script errors collected: uncaught exceptions and console errors (a CSP violation
 * is one). Failed loads are left out: a test that cuts the stream or has the API refuse causes them.
 */
export interface DashboardPage {
  page: Page;
  problems: string[];
}

/** Opens the page with its script errors collected (not waiting for anything on it). */
async function openWatchedPage(context: BrowserContext, baseUrl: string, waitMs: number): Promise<DashboardPage> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  await page.goto(new URL('/', baseUrl).href, { timeout: waitMs });
  return { page, problems };
}

/** Waits until the page shows live data. */
async function waitForLiveData(page: Page, waitMs: number): Promise<void> {
  await waitForText(page, '#connection', /^\W*Live$/, waitMs);
  await waitForText(page, '#requests-total', /^\d[\d,]*$/, waitMs);
}

/** Opens the dashboard and waits until it shows live data. */
export async function openDashboard(context: BrowserContext, baseUrl: string, waitMs = DEFAULT_WAIT_MS): Promise<DashboardPage> {
  const watched = await openWatchedPage(context, baseUrl, waitMs);
  await waitForLiveData(watched.page, waitMs);
  return watched;
}

/** Opens the dashboard of a control plane whose store has authentication on; waits for the sign-in form. */
export async function openSignInForm(context: BrowserContext, baseUrl: string, waitMs = DEFAULT_WAIT_MS): Promise<DashboardPage> {
  const watched = await openWatchedPage(context, baseUrl, waitMs);
  await watched.page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: waitMs });
  return watched;
}

/**
 * Signs in through the form as a person does (types, then presses Enter); returns the form's error
 * when it stays (a wrong password), or '' once the header says "Signed in as USER" and live data shows.
 */
export async function signInFromPage(page: Page, user: string, password: string, waitMs = DEFAULT_WAIT_MS): Promise<string> {
  await page.getByLabel('User').fill(user, { timeout: waitMs });
  await page.getByLabel('Password').fill(password, { timeout: waitMs });
  await page.getByLabel('Password').press('Enter', { timeout: waitMs });
  const signedIn = page.locator('#signed-in-as', { hasText: `Signed in as ${user}` });
  const refused = page.locator('#sign-in-error:not([hidden])');
  await signedIn.or(refused).first().waitFor({ timeout: waitMs });
  if (await refused.isVisible()) return ((await refused.textContent()) ?? '').trim();
  await waitForLiveData(page, waitMs);
  return '';
}

/** Waits until the element's trimmed text matches. */
export async function waitForText(page: Page, selector: string, pattern: RegExp, waitMs = DEFAULT_WAIT_MS): Promise<string> {
  try {
    await page.waitForFunction(
      ([css, source, flags]) => new RegExp(source, flags).test((globalThis as unknown as InPage).document.querySelector(css)?.textContent?.trim() ?? ''),
      [selector, pattern.source, pattern.flags] as const,
      { timeout: waitMs, polling: 100 },
    );
  } catch (error) {
    const actual = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => '(missing)');
    throw new Error(`waited ${waitMs} ms for ${selector} to match ${pattern}; it shows ${JSON.stringify(actual?.trim())}`, { cause: error });
  }
  return ((await page.locator(selector).first().textContent()) ?? '').trim();
}

/** The "Requests served" total the page shows. */
export async function readRequestsTotal(page: Page): Promise<number> {
  const text = (await page.locator('#requests-total').textContent()) ?? '';
  const value = Number(text.replace(/,/g, ''));
  assert.ok(Number.isFinite(value), `the requests total reads ${JSON.stringify(text)}, not a number`);
  return value;
}

/** Waits until the page's requests total is at least `minimum`; returns what it shows. */
export async function waitForRequestsTotal(page: Page, minimum: number, waitMs = DEFAULT_WAIT_MS): Promise<number> {
  try {
    await page.waitForFunction(
      (least) => Number((globalThis as unknown as InPage).document.getElementById('requests-total')?.textContent?.replace(/,/g, '')) >= least,
      minimum,
      { timeout: waitMs, polling: 100 },
    );
  } catch (error) {
    throw new Error(`waited ${waitMs} ms for the requests total to reach ${minimum}; it shows ${await readRequestsTotal(page)}`, { cause: error });
  }
  return readRequestsTotal(page);
}

/** The row of a backend in its pool's table. */
export function backendRow(page: Page, pool: string, address: string) {
  return page.locator(`section.pool[aria-labelledby="pool-title-${pool}"] tbody tr`, { has: page.locator('th', { hasText: address }) });
}

/** Freezes the autoscaler from the page (every pool, or one), typing the reason into the dialog. */
export async function freezeFromPage(page: Page, reason: string, pool?: string, waitMs = DEFAULT_WAIT_MS): Promise<void> {
  const button = pool === undefined
    ? page.getByRole('button', { name: 'Freeze every pool…' })
    : page.getByRole('button', { name: `Freeze the autoscaler of pool ${pool}` });
  await button.click({ timeout: waitMs });
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Reason').fill(reason, { timeout: waitMs });
  await dialog.getByRole('button', { name: pool === undefined ? 'Freeze every pool' : `Freeze pool ${pool}` }).click({ timeout: waitMs });
  await dialog.waitFor({ state: 'hidden', timeout: waitMs });
}

/**
 * Presses Drain (or Undrain) on a backend's row and waits for the page's notice of the answer;
 * returns the notice ("Draining backend ...", or "Could not drain backend ...: <message> (<code>)").
 */
export async function drainFromPage(page: Page, pool: string, address: string, action: 'drain' | 'undrain' = 'drain', waitMs = DEFAULT_WAIT_MS): Promise<string> {
  const verb = action === 'drain' ? 'Drain' : 'Undrain';
  const about = `backend ${address} of pool ${pool}`;
  const notices = page.locator('#notices .notice', { hasText: new RegExp(about.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i') });
  const before = await notices.count();
  await page.getByRole('button', { name: `${verb} ${about}` }).click({ timeout: waitMs });
  try {
    await page.waitForFunction(
      ([text, count]) => Array.from((globalThis as unknown as InPage).document.querySelectorAll('#notices .notice')).filter((notice) => notice.textContent?.toLowerCase().includes(text)).length > count,
      [about.toLowerCase(), before] as const,
      { timeout: waitMs, polling: 100 },
    );
  } catch (error) {
    throw new Error(`waited ${waitMs} ms for the page to report the ${action} of ${about}`, { cause: error });
  }
  return ((await page.locator('#notices .notice').first().textContent()) ?? '').trim();
}

export interface DashboardScenario {
  baseUrl: string;
  /** Where the screenshot goes. */
  outputDir: string;
  /** A store member the page must list, and whether it leads. */
  member: { name: string; isLeader: boolean };
  /** A backend the page must show; it gets drained. */
  backend: { pool: string; address: string };
  /** An event summary the page must show (matched as text). */
  eventText: RegExp;
  /** Makes the proxies' request counter rise; resolves to how many requests were added. */
  addRequests(): Promise<number>;
  /** Checks that the control plane froze every pool with this reason (the stub's record; etcdctl on the real thing), once the API said ok. */
  confirmFrozen(reason: string): Promise<void>;
  /** Checks that the control plane drains the backend (called once the API said ok; may poll, bounded). */
  confirmDrained(pool: string, address: string): Promise<void>;
  waitMs?: number;
}

/**
 * The whole check the issue asks for: live data appears, the request counter rises, the freeze and
 * drain buttons reach the control plane, and a screenshot is saved. Returns the screenshot's path.
 */
export async function checkDashboard(context: BrowserContext, scenario: DashboardScenario): Promise<string> {
  const waitMs = scenario.waitMs ?? DEFAULT_WAIT_MS;
  const { page, problems } = await openDashboard(context, scenario.baseUrl, waitMs);
  try {
    const memberRow = page.locator('#members tr', { has: page.locator('th', { hasText: scenario.member.name }) });
    await memberRow.waitFor({ timeout: waitMs });
    if (scenario.member.isLeader) assert.match((await memberRow.textContent()) ?? '', /leader/);
    await backendRow(page, scenario.backend.pool, scenario.backend.address).waitFor({ timeout: waitMs });
    await page.locator('#events li', { hasText: scenario.eventText }).first().waitFor({ timeout: waitMs });

    const before = await readRequestsTotal(page);
    const added = await scenario.addRequests();
    assert.ok(added > 0, 'addRequests must add at least one request');
    await waitForRequestsTotal(page, before + added, waitMs);

    const reason = `dashboard test ${Date.now()}: hold scaling while we look`;
    await freezeFromPage(page, reason, undefined, waitMs);
    await scenario.confirmFrozen(reason);
    await waitForText(page, '#global-freeze-state', /frozen for every pool/, waitMs);

    const notice = await drainFromPage(page, scenario.backend.pool, scenario.backend.address, 'drain', waitMs);
    assert.match(notice, /^Draining backend/, 'the control plane accepted the drain');
    await scenario.confirmDrained(scenario.backend.pool, scenario.backend.address);
    await backendRow(page, scenario.backend.pool, scenario.backend.address).locator('.state', { hasText: /draining|drained/ }).waitFor({ timeout: waitMs });

    const screenshotPath = join(scenario.outputDir, 'dashboard.png');
    await page.screenshot({ path: screenshotPath, fullPage: true, timeout: waitMs });
    assert.deepEqual(problems, [], 'the page logged errors');
    return screenshotPath;
  } finally {
    await page.close();
  }
}
