// Which priority class a request belongs to, or whether it is exempt from shedding (health-check
// probes, for example). Operator rules come first, in order, the first match winning; then the
// priority header the client sent; then the configured default. Rules match on the exact path, a
// path prefix, the method and a header (present, or with an exact value); a rule with several
// conditions needs all of them. No regular expressions: a rule costs a few string comparisons.

import { isPriority, type Priority } from './priority.ts';

export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface RequestMatch {
  readonly path?: string;
  readonly pathPrefix?: string;
  /** Upper case, as on the wire. */
  readonly method?: string;
  /** Header names are lower case (as Node.js gives them); without a value, presence matches. */
  readonly header?: { readonly name: string; readonly value?: string };
}

export interface PriorityRule extends RequestMatch {
  readonly priority: Priority;
}

export interface ClassifierSettings {
  /** Lower-case name of the header a client may name its class in. */
  readonly header: string;
  readonly default: Priority;
  readonly rules: readonly PriorityRule[];
  readonly exempt: readonly RequestMatch[];
}

export interface ClassifiableRequest {
  readonly method: string;
  /** The request target; a query string is ignored. */
  readonly path: string;
  readonly headers: HeaderMap;
}

export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : value?.[0];
}

function pathOnly(target: string): string {
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
}

export function matches(rule: RequestMatch, request: ClassifiableRequest, path: string): boolean {
  if (rule.path !== undefined && path !== rule.path) return false;
  if (rule.pathPrefix !== undefined && !path.startsWith(rule.pathPrefix)) return false;
  if (rule.method !== undefined && request.method.toUpperCase() !== rule.method) return false;
  if (rule.header !== undefined) {
    const value = headerValue(request.headers, rule.header.name);
    if (value === undefined || (rule.header.value !== undefined && value !== rule.header.value)) return false;
  }
  return true;
}

export function classify(request: ClassifiableRequest, settings: ClassifierSettings): Priority | 'exempt' {
  const path = pathOnly(request.path);
  if (settings.exempt.some((rule) => matches(rule, request, path))) return 'exempt';
  const rule = settings.rules.find((candidate) => matches(candidate, request, path));
  if (rule !== undefined) return rule.priority;
  const claimed = headerValue(request.headers, settings.header)?.trim().toLowerCase();
  return claimed !== undefined && isPriority(claimed) ? claimed : settings.default;
}
