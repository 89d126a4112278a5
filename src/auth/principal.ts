import type { SystemScope } from './scopes.js';

/**
 * Who is asking: a person logged in with a session, or a registered system (SMART Backend
 * Services client) with an access token. Every authorization decision starts from one of these.
 */

/** The roles of users rows (seed: users.role). */
export const ROLES = ['admin', 'doctor', 'nurse', 'patient', 'finance'] as const;
export type Role = (typeof ROLES)[number];

/** Roles of the clinicians whose reach is the patients assigned to them. */
export const CLINICIAN_ROLES: readonly Role[] = ['doctor', 'nurse'];

/** An emergency access a clinician holds to one patient until `expiresAt` (epoch ms). */
export interface BreakGlassGrant {
  patientId: string;
  expiresAt: number;
}

/** A person with a live login session. */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  role: Role;
  sessionId: string;
  /** Role patient: the patients row linked to the account (patients.user_id), if any. */
  patientId?: string;
  /** Doctors and nurses: break-glass grants in force when the session was checked. */
  grants: BreakGlassGrant[];
}

export const CLIENT_KINDS = ['lab', 'ehr', 'insurer', 'other'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** A registered system holding an access token from POST /auth/token. */
export interface ClientPrincipal {
  kind: 'client';
  clientId: string;
  clientKind: ClientKind;
  /** The scopes the token was granted, space separated (v2 spelling). */
  scope: string;
  /** The same, parsed. */
  scopes: SystemScope[];
  tokenId: string;
}

export type Principal = UserPrincipal | ClientPrincipal;

/** The role a principal acts in, as recorded in the security log ('system' for clients). */
export function roleOf(p: Principal): Role | 'system' {
  return p.kind === 'user' ? p.role : 'system';
}

/** Whether a principal is a logged-in admin. */
export const isAdmin = (p: Principal | undefined): boolean => p?.kind === 'user' && p.role === 'admin';
