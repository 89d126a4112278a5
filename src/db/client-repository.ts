/** api_clients rows: systems registered for SMART Backend Services (migration 0116). */
import type { Knex } from 'knex';
import type { JSONWebKeySet } from 'jose';
import { v7 as uuidv7 } from 'uuid';
import type { ClientKind } from '../auth/principal.js';
import { nowSeconds } from './resource-repository.js';

export const CLIENT_STATUSES = ['active', 'revoked'] as const;
export type ClientStatus = (typeof CLIENT_STATUSES)[number];

/** A registered client as the rest of the code sees it (exactly one of jwks and jwksUrl is set). */
export interface ClientRecord {
  id: string;
  name: string;
  kind: ClientKind;
  jwks: JSONWebKeySet | null;
  jwksUrl: string | null;
  /** The scopes the client may be granted, space separated (v2 spelling). */
  scope: string;
  status: ClientStatus;
  createdBy: string | null;
  /** 'YYYY-MM-DD HH:MM:SS' UTC, as both dialects return it. */
  createdAt: string;
  updatedAt: string | null;
}

export interface NewClient {
  name: string;
  kind: ClientKind;
  jwks?: JSONWebKeySet;
  jwksUrl?: string;
  scope: string;
  createdBy?: string;
}

/** Changes to a client; a key given as undefined is left alone, jwks / jwksUrl given as null are cleared. */
export interface ClientChanges {
  name?: string;
  scope?: string;
  jwks?: JSONWebKeySet | null;
  jwksUrl?: string | null;
  status?: ClientStatus;
}

const COLUMNS = ['id', 'name', 'kind', 'jwks', 'jwks_url', 'scope', 'status', 'created_by', 'created_at', 'updated_at'];

function recordOf(r: Record<string, unknown>): ClientRecord {
  const jwks = r.jwks === null || r.jwks === undefined ? null : typeof r.jwks === 'string' ? JSON.parse(r.jwks) as JSONWebKeySet : r.jwks as JSONWebKeySet;
  return {
    id: String(r.id),
    name: String(r.name),
    kind: r.kind as ClientKind,
    jwks,
    jwksUrl: (r.jwks_url as string | null) ?? null,
    scope: String(r.scope),
    status: r.status as ClientStatus,
    createdBy: (r.created_by as string | null) ?? null,
    createdAt: String(r.created_at),
    updatedAt: r.updated_at === null || r.updated_at === undefined ? null : String(r.updated_at),
  };
}

/** Registers a client (status active); returns it. */
export async function insertClient(db: Knex, c: NewClient): Promise<ClientRecord> {
  const at = nowSeconds().sql;
  const row = {
    id: uuidv7(), name: c.name, kind: c.kind, jwks: c.jwks ? JSON.stringify(c.jwks) : null, jwks_url: c.jwksUrl ?? null,
    scope: c.scope, status: 'active', created_by: c.createdBy ?? null, created_at: at, updated_at: at,
  };
  await db('api_clients').insert(row);
  return recordOf(row);
}

/** The client with this id (any status), or undefined. */
export async function findClient(db: Knex, id: string): Promise<ClientRecord | undefined> {
  const row = (await db('api_clients').where('id', id).first(COLUMNS)) as Record<string, unknown> | undefined;
  return row ? recordOf(row) : undefined;
}

/** Clients newest first, optionally of one kind and/or status; `before` is the last id of the previous page. */
export async function listClients(db: Knex, opts: { kind?: ClientKind; status?: ClientStatus; limit: number; before?: string }): Promise<ClientRecord[]> {
  const q = db('api_clients').orderBy('id', 'desc').limit(opts.limit).select(COLUMNS);
  if (opts.kind) q.where('kind', opts.kind);
  if (opts.status) q.where('status', opts.status);
  if (opts.before) q.where('id', '<', opts.before);
  return ((await q) as Record<string, unknown>[]).map(recordOf);
}

/** Applies changes to a client (updated_at = now); the client as it is now, or undefined when there is none. */
export async function updateClient(db: Knex, id: string, changes: ClientChanges): Promise<ClientRecord | undefined> {
  const patch: Record<string, unknown> = { updated_at: nowSeconds().sql };
  if (changes.name !== undefined) patch.name = changes.name;
  if (changes.scope !== undefined) patch.scope = changes.scope;
  if (changes.jwks !== undefined) patch.jwks = changes.jwks === null ? null : JSON.stringify(changes.jwks);
  if (changes.jwksUrl !== undefined) patch.jwks_url = changes.jwksUrl;
  if (changes.status !== undefined) patch.status = changes.status;
  const n = await db('api_clients').where('id', id).update(patch);
  return n > 0 ? findClient(db, id) : undefined;
}
