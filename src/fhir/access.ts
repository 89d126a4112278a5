/**
 * Enforcement of the access policy (src/auth/policy.ts) over the registry: which rule applies to
 * an interaction, the SQL condition that narrows a query to the rows the rule reaches, which
 * patients are within reach, and the view a restricted reader gets. Every read, search, include,
 * chain, history, $everything and write goes through one of these. docs/security.md.
 */
import type { Knex } from 'knex';
import { FhirError } from './outcome.js';
import { allResourceDefinitions, resourceDefinition, type Interaction, type ResourceDefinition } from './registry.js';
import type { Resource } from './types.js';
import { needsNamedScope, roleRule, systemRule, PERMISSION_OF, type CategoryPlacement, type PolicyInteraction, type PolicyWording, type Rule } from '../auth/policy.js';
import type { Principal } from '../auth/principal.js';
import { formatScope, scopesAllow } from '../auth/scopes.js';
import { whereAssigned, whereClinicianOf, type AssignmentValues } from '../db/assignment.js';
import { dateToSqlTimestamp } from '../mappers/datatypes.js';
import type { ReadNarrowing } from '../db/resource-repository.js';

type QB = Knex.QueryBuilder;

/** The registry's name of each interaction the policy speaks of. */
export const REGISTRY_INTERACTION: Record<PolicyInteraction, Interaction> = {
  read: 'read', vread: 'vread', search: 'search-type', create: 'create', update: 'update', delete: 'delete', history: 'history-instance',
};

const FULL: Rule = { reach: 'all' };

/**
 * Where a type stands in the policy when its rules come from its category (the generic types):
 * the category, and whether its resources name a patient (the column the reach narrows by).
 * Undefined for the table-backed types, whose rules are their own.
 */
export function placementOf(def: ResourceDefinition): CategoryPlacement | undefined {
  return def.category ? { category: def.category, patientScoped: !!def.patientColumn } : undefined;
}

/** Whether a system reaches a type only through a scope that names it (a restricted generic type). */
export function namedScopeOnly(type: string): boolean {
  const def = resourceDefinition(type);
  return !!def && needsNamedScope(type, placementOf(def));
}

/** The values a narrowing binds (placeholders when a statement is built once and reused). */
export interface NarrowValues extends AssignmentValues {
  patientId: unknown;
}

/**
 * The condition a rule puts on a query over a type's table. `key` names the statement's shape:
 * two narrowings with the same key differ only in their values, so a statement built from one
 * serves the other (the prepared read by id).
 */
export type Narrowing = ReadNarrowing<NarrowValues>;

const nowSql = (): string => dateToSqlTimestamp(new Date(Math.floor(Date.now() / 1000) * 1000));

/** What a narrowing is for: reads (and searches) or writes. */
export type Purpose = 'read' | 'write';

/** Narrows queries over a type's table to what a caller may see of it (searches, chains, includes). */
export interface RowScope {
  narrow(db: Knex, q: QB, def: ResourceDefinition, alias: string): void;
}

/** What a caller may do and see; built once per request from its principal. */
export class Access {
  /** @param principal who is asking; undefined: the server itself (workers, tools), which may do everything */
  constructor(readonly principal?: Principal) {}

  /** The rule for an interaction on a type, or undefined when the caller never has it. */
  rule(def: ResourceDefinition, interaction: PolicyInteraction): Rule | undefined {
    const p = this.principal;
    if (!p) return FULL;
    const placement = placementOf(def);
    if (p.kind === 'client') return systemRule(def.type, interaction, (type, perm, named) => scopesAllow(p.scopes, type, perm, named), placement);
    return roleRule(p.role, def.type, interaction, placement);
  }

  /** The rule, or 403 (OperationOutcome code forbidden) when the caller never has the interaction. */
  require(def: ResourceDefinition, interaction: PolicyInteraction): Rule {
    const rule = this.rule(def, interaction);
    if (!rule) throw this.forbidden(def.type, interaction);
    return rule;
  }

  /**
   * The 403 for an interaction the caller never has on a type (the same whatever the resource), or
   * has only on a subset of it (`except` describes the subset).
   */
  forbidden(type: string, interaction: PolicyInteraction, except?: string): FhirError {
    const p = this.principal;
    const named = namedScopeOnly(type);
    const msg = p?.kind === 'client'
      ? `This client's scopes do not permit ${interaction} on ${type} (it would need ${formatScope({ type, permissions: new Set([PERMISSION_OF[interaction]]) })}${named ? ', naming the type: system/* does not reach it' : ''})`
      : `The role ${p?.role ?? 'unknown'} may not ${interaction} ${type} resources${except ? ` other than ${except}` : ''}`;
    return new FhirError(403, msg, 'forbidden');
  }

  /** Break-glass grants in force now: the patients they open. */
  grantPatients(now = Date.now()): string[] {
    const p = this.principal;
    return p?.kind === 'user' ? p.grants.filter((g) => g.expiresAt > now).map((g) => g.patientId) : [];
  }

  /** Whether an access to this patient's data is made under a break-glass grant (flagged in the security log). */
  breakGlass(patientId: string | null | undefined): boolean {
    return !!patientId && this.grantPatients().includes(patientId);
  }

  /**
   * The condition a rule puts on rows of a type, or undefined when it reaches every row. For a
   * write of a type whose rows make assignments, break-glass grants do not count.
   */
  narrowing(def: ResourceDefinition, rule: Rule, purpose: Purpose = 'read'): Narrowing | undefined {
    if (rule.reach === 'all') return undefined;
    const p = this.principal;
    const userId = p?.kind === 'user' ? p.userId : null;
    const patientId = p?.kind === 'user' ? p.patientId ?? null : null;
    const column = def.patientColumn;
    if (rule.reach === 'own-clinicians') {
      return {
        key: 'own-clinicians', values: { userId, now: null, grantPatients: [], patientId },
        apply: (db, q, alias, v) => { if (v.patientId === null) q.whereRaw('1 = 0'); else whereClinicianOf(db, q, `${alias}.id`, v.patientId); },
      };
    }
    if (!column) throw new Error(`${def.type} has no patient column: reach ${rule.reach} cannot apply`);
    if (rule.reach === 'own') {
      return {
        key: patientId === null ? 'own:none' : 'own', values: { userId, now: null, grantPatients: [], patientId },
        apply: (_db, q, alias, v) => { if (v.patientId === null) q.whereRaw('1 = 0'); else q.where(`${alias}.${column}`, v.patientId as Knex.Value); },
      };
    }
    const grantPatients = this.grantsFor(def, purpose);
    return {
      key: `assigned:${grantPatients.length}`, values: { userId, now: nowSql(), grantPatients, patientId },
      apply: (db, q, alias, v) => whereAssigned(db, q, `${alias}.${column}`, v),
    };
  }

  /** Narrows a query over `def.table as alias` to the rows the rule reaches. */
  narrow(db: Knex, q: QB, def: ResourceDefinition, rule: Rule, alias = 't'): void {
    const n = this.narrowing(def, rule);
    if (n) n.apply(db, q, alias, n.values);
  }

  /** The break-glass patients that count for a purpose on a type (none for writes of assigning types). */
  private grantsFor(def: ResourceDefinition | undefined, purpose: Purpose): string[] {
    return purpose === 'write' && def?.assigns ? [] : this.grantPatients();
  }

  /** The patients among `patientIds` within the rule's reach (for a write of `def` when given). */
  async reachable(db: Knex, rule: Rule, patientIds: (string | null | undefined)[], write?: ResourceDefinition): Promise<Set<string>> {
    const ids = [...new Set(patientIds.filter((x): x is string => typeof x === 'string' && x !== ''))];
    if (rule.reach === 'all') return new Set(ids);
    const p = this.principal;
    if (rule.reach === 'own') return new Set(ids.filter((id) => p?.kind === 'user' && id === p.patientId));
    if (rule.reach !== 'assigned' || ids.length === 0 || p?.kind !== 'user') return new Set();
    const q = db('patients as t').select('t.id').whereIn('t.id', ids);
    whereAssigned(db, q, 't.id', { userId: p.userId, now: nowSql(), grantPatients: this.grantsFor(write, write ? 'write' : 'read') });
    return new Set(((await q) as { id: string }[]).map((r) => String(r.id)));
  }

  /** The resource as the rule lets the caller see it (a named view of the type, or as it is). */
  view<R extends Resource>(def: ResourceDefinition, rule: Rule, resource: R): R {
    if (!rule.view) return resource;
    const view = def.views?.[rule.view];
    if (!view) throw new Error(`${def.type} has no view '${rule.view}'`);
    return view(resource) as R;
  }

  /**
   * Each type narrowed by the caller's rule for `interaction` (search by default); a type the
   * caller may never search answers 403 (a chain into it, say).
   */
  scope(interaction: PolicyInteraction = 'search'): RowScope {
    return { narrow: (db, q, def, alias) => this.narrow(db, q, def, this.require(def, interaction), alias) };
  }

  /**
   * 403 when a search uses a parameter the caller's view of a type hides (the network address of
   * the disclosure view): decided by the role, so it tells nothing about the data.
   */
  checkSearchable(def: ResourceDefinition, names: string[]): void {
    const rule = this.rule(def, 'search');
    const hidden = rule?.view ? def.viewHiddenParams?.[rule.view] ?? [] : [];
    const used = names.filter((n) => hidden.includes(n));
    if (used.length) throw new FhirError(403, `The search parameter${used.length > 1 ? 's' : ''} ${used.join(', ')} of ${def.type} ${used.length > 1 ? 'are' : 'is'} not available to your role`, 'forbidden');
  }

  /** Whether the caller may never be refused anything (admins, the server itself). */
  get unrestricted(): boolean {
    const p = this.principal;
    return !p || (p.kind === 'user' && p.role === 'admin');
  }
}

/** The policy in words as the registry serves it: named subsets and groups described, interactions a type lacks left out. */
export const POLICY_WORDING: PolicyWording = {
  describe(kind, name) {
    for (const def of allResourceDefinitions()) {
      if (kind === 'only' && def.subsets?.[name]) return def.subsets[name]!.description;
      if (kind === 'changes' && def.elementGroups?.[name]) return def.elementGroups[name]!.description;
    }
    return kind === 'view' ? `the ${name}` : name;
  },
  supports(type, interaction) {
    const def = resourceDefinition(type);
    return !!def && def.interactions.includes(REGISTRY_INTERACTION[interaction]);
  },
  placement(type) {
    const def = resourceDefinition(type);
    return def ? placementOf(def) : undefined;
  },
};
