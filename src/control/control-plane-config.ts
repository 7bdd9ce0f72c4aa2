// The `controlPlane:` section of Concord's configuration: the control plane's own settings (the
// admin API's address, the ceiling on every autoscaled pool, how health checking is shared out
// among the members and how fresh its published results must be, how much of the event timeline
// is kept). Every key has a default, so the section may be left out:
//
//   controlPlane:
//     admin: 127.0.0.1:7070
//     tls: { certFile: admin.pem, keyFile: admin.key }     (optional: the admin API and dashboard over HTTPS)
//     autoscale: { hardMaxInstances: 100, leaseTtlSeconds: 10 }
//     membership: { leaseTtlSeconds: 5 }
//     health: { refreshMs: 5000, maxResultAgeMs: 15000, maxConcurrentChecks: 64 }
//     events: { maxEvents: 10000, maxAgeMs: 604800000 }
//
// docs/control-plane.md explains each key and why its default is what it is.

import { z } from 'zod';
import { DEFAULT_HARD_MAX_INSTANCES } from '../autoscale/policy/defaults.ts';

/** No pool configuration may raise the ceiling above this. */
export const MAX_HARD_MAX_INSTANCES = 10_000;
export const DEFAULT_CONTROL_PLANE_ADMIN = '127.0.0.1:7070';

const whole = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`);
const positiveMs = (what: string, fallback: number) => whole(what).min(1, `${what} must be at least 1 (milliseconds)`).default(fallback);
const seconds = (what: string, fallback: number) => whole(what).min(1, `${what} must be at least 1 (seconds)`).max(3_600, `${what} must be at most 3600 (seconds)`).default(fallback);

/** HOST:PORT without pulling in the proxy's schema (that file imports this one). */
const listenAddress = z.string({ error: 'must be HOST:PORT, e.g. 127.0.0.1:7070' })
  .regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:7070 (port 0 picks a free one)')
  .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65_535, 'the port must be at most 65535');

export const controlPlaneSettingsSchema = z
  .object({
    /** The admin API and dashboard: /api/*, /metrics, /events. */
    admin: listenAddress.default(DEFAULT_CONTROL_PLANE_ADMIN),
    /** Serve the admin API and dashboard over HTTPS (the same shape as the proxy's tls). Files are read on every member that serves it. */
    tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
    autoscale: z
      .object({
        hardMaxInstances: whole('hardMaxInstances').min(1, 'hardMaxInstances must be at least 1').max(MAX_HARD_MAX_INSTANCES, `hardMaxInstances must be at most ${MAX_HARD_MAX_INSTANCES}`).default(DEFAULT_HARD_MAX_INSTANCES),
        /** The autoscaler's election lease: a dead leader is replaced within about this long. */
        leaseTtlSeconds: seconds('leaseTtlSeconds', 10),
      })
      .strict()
      .prefault({}),
    membership: z
      .object({
        /** A member's registration lease: when a member dies, its health checks move to the others within about this long. */
        leaseTtlSeconds: seconds('leaseTtlSeconds', 5),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        /** A published result is rewritten at least this often, so that proxies can tell it is current. */
        refreshMs: positiveMs('refreshMs', 5_000),
        /** Proxies treat a result not rewritten for this long as unknown, and check the backend themselves. */
        maxResultAgeMs: positiveMs('maxResultAgeMs', 15_000),
        /** Probes one member runs at once. */
        maxConcurrentChecks: whole('maxConcurrentChecks').min(1, 'maxConcurrentChecks must be at least 1').max(10_000, 'maxConcurrentChecks must be at most 10000').default(64),
      })
      .strict()
      .prefault({}),
    events: z
      .object({
        /** Events kept in the store's timeline; the oldest beyond are deleted. */
        maxEvents: whole('maxEvents').min(100, 'maxEvents must be at least 100').max(10_000_000, 'maxEvents must be at most 10000000').default(10_000),
        /** Events older than this are deleted. */
        maxAgeMs: positiveMs('maxAgeMs', 7 * 24 * 3_600_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((settings, context) => {
    const handoverMs = settings.membership.leaseTtlSeconds * 1000 + settings.health.refreshMs;
    if (settings.health.maxResultAgeMs <= handoverMs) {
      context.addIssue({
        code: 'custom',
        path: ['health', 'maxResultAgeMs'],
        message: `maxResultAgeMs (${settings.health.maxResultAgeMs}) must exceed membership.leaseTtlSeconds × 1000 + health.refreshMs (${handoverMs}): otherwise proxies give up on the results while a dead member's checks are still moving to another member`,
      });
    }
  });

export type ControlPlaneSettings = z.output<typeof controlPlaneSettingsSchema>;
