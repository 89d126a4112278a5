/**
 * SMART system scopes: v2 `system/<Type|*>.<cruds>` and the v1 forms `.read`, `.write`, `.*`.
 * https://build.fhir.org/ig/HL7/smart-app-launch/scopes-and-launch-context.html
 * Pure: parsing, granting (requested ∩ allowed) and the check of one permission.
 */

/** SMART v2 permissions, in the order a scope spells them. */
export const PERMISSIONS = ['c', 'r', 'u', 'd', 's'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface SystemScope {
  /** A resource type, or * for every type. */
  type: string;
  permissions: Set<Permission>;
}

const V1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };
const SCOPE_RE = /^system\/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]+)$/;

/** Parses one scope; undefined when it is not a system scope HMS understands (granular `?query` scopes included). */
export function parseScope(raw: string): SystemScope | undefined {
  const m = SCOPE_RE.exec(raw);
  if (!m) return undefined;
  const [, type, perms] = m as unknown as [string, string, string];
  // own keys only: 'constructor' (and any other Object.prototype name) is not a v1 permission
  const v1 = Object.hasOwn(V1, perms) ? V1[perms] : undefined;
  if (v1) return { type, permissions: new Set(v1) };
  // v2: a non-empty subsequence of c r u d s, in that order
  let last = -1;
  const set = new Set<Permission>();
  for (const ch of perms) {
    const i = PERMISSIONS.indexOf(ch as Permission);
    if (i <= last) return undefined;
    last = i;
    set.add(ch as Permission);
  }
  return set.size ? { type, permissions: set } : undefined;
}

/** Parses a space-separated scope string; unknown scopes are returned apart. */
export function parseScopes(scope: string): { scopes: SystemScope[]; unknown: string[] } {
  const scopes: SystemScope[] = [];
  const unknown: string[] = [];
  for (const raw of scope.split(/\s+/).filter(Boolean)) {
    const s = parseScope(raw);
    if (s) scopes.push(s);
    else unknown.push(raw);
  }
  return { scopes, unknown };
}

/** A scope in its v2 spelling. */
export function formatScope(s: SystemScope): string {
  return `system/${s.type}.${PERMISSIONS.filter((p) => s.permissions.has(p)).join('')}`;
}

/**
 * The scopes to grant: each requested scope narrowed to what the allowed ones permit for its type
 * (a requested `*` takes the types the allowed scopes name). Merged per type, v2 spelling.
 * `namedOnly` types (the restricted generic types: docs/security.md) are reached only through a
 * scope that names them: an allowed `*` does not grant a named scope on one, and a named scope on
 * one is never folded into `*`.
 */
export function grantScopes(requested: SystemScope[], allowed: SystemScope[], namedOnly: (type: string) => boolean = () => false): SystemScope[] {
  const byType = new Map<string, Set<Permission>>();
  const add = (type: string, perms: Iterable<Permission>): void => {
    const set = byType.get(type) ?? new Set<Permission>();
    for (const p of perms) set.add(p);
    if (set.size) byType.set(type, set);
  };
  for (const r of requested) {
    for (const a of allowed) {
      if (r.type !== '*' && a.type !== '*' && r.type !== a.type) continue;
      if (r.type !== '*' && a.type === '*' && namedOnly(r.type)) continue;
      const type = r.type === '*' ? a.type : r.type;
      add(type, [...r.permissions].filter((p) => a.permissions.has(p)));
    }
  }
  // a permission * already grants makes the same permission on a named type redundant
  const wildcard = byType.get('*');
  const out: SystemScope[] = [];
  for (const [type, permissions] of byType) {
    if (type !== '*' && wildcard && !namedOnly(type) && [...permissions].every((p) => wildcard.has(p))) continue;
    out.push({ type, permissions });
  }
  return out.sort((a, b) => (a.type === b.type ? 0 : a.type === '*' ? -1 : b.type === '*' ? 1 : a.type < b.type ? -1 : 1));
}

/** Whether scopes permit `permission` on `type`; with `named`, only a scope naming the type counts (not `*`). */
export function scopesAllow(scopes: SystemScope[], type: string, permission: Permission, named = false): boolean {
  return scopes.some((s) => ((!named && s.type === '*') || s.type === type) && s.permissions.has(permission));
}
