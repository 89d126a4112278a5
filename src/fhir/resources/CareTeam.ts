/**
 * CareTeam over care_teams and care_team_members: who looks after a patient. An active
 * Practitioner member of an active team whose periods cover now is assigned to the patient
 * (docs/security.md). https://hl7.org/fhir/R4/careteam.html · docs/resources/CareTeam.md
 */
import type { Knex } from 'knex';
import { defineResource } from '../registry.js';
import { ALL_INTERACTIONS, checkPatientSubject, codings, identifierParam, literalRefs, patientParams } from './common.js';
import { checkPeriod, checkRealDate } from '../checks.js';
import { unprocessable } from '../outcome.js';
import type { Row } from '../../mappers/column-map.js';
import { careTeamFromRow, careTeamToRow, type CareTeam, type MemberRow } from '../../mappers/care-team-mapper.js';

const TABLE = 'care_teams';

/** Splits the row the write path hands over into the team's columns and its members. */
function split(row: Row): { team: Row; members: MemberRow[] } {
  const { members, ...team } = row;
  return { team, members: (members as MemberRow[] | undefined) ?? [] };
}

async function writeMembers(trx: Knex, id: string, members: MemberRow[]): Promise<void> {
  await trx('care_team_members').where({ care_team_id: id }).delete();
  if (members.length) await trx('care_team_members').insert(members.map((m) => ({ ...m, care_team_id: id })));
}

const participants = (r: CareTeam) => r.participant ?? [];

export const CareTeamDefinition = defineResource<CareTeam>({
  type: 'CareTeam',
  table: TABLE,
  profile: 'http://hl7.org/fhir/StructureDefinition/CareTeam',
  description: 'The care team of a patient (care_teams, care_team_members): its active Practitioner members are assigned to the patient',
  interactions: ALL_INTERACTIONS,
  softDelete: false,
  patientColumn: 'patient_id',
  assigns: true,
  storage: {
    async insertRow(trx, id, row) {
      const { team, members } = split(row);
      await trx(TABLE).insert({ ...team, id });
      await writeMembers(trx, id, members);
    },
    async updateRow(trx, id, row) {
      const { team, members } = split(row);
      await trx(TABLE).where({ id }).update(team);
      await writeMembers(trx, id, members);
    },
    async deleteRow(trx, id) {
      await trx('care_team_members').where({ care_team_id: id }).delete();
      await trx(TABLE).where({ id }).delete();
    },
  },
  toRow: (r) => careTeamToRow(r),
  fromRow: careTeamFromRow,
  check(r) {
    checkPatientSubject(r, 'CareTeam');
    checkRealDate(r.period?.start, 'CareTeam.period.start');
    checkRealDate(r.period?.end, 'CareTeam.period.end');
    checkPeriod(r.period?.start, r.period?.end, 'CareTeam.period');
    participants(r).forEach((p, i) => {
      checkRealDate(p.period?.start, `CareTeam.participant[${i}].period.start`);
      checkRealDate(p.period?.end, `CareTeam.participant[${i}].period.end`);
      checkPeriod(p.period?.start, p.period?.end, `CareTeam.participant[${i}].period`);
    });
  },
  async checkStored(_r, ctx) {
    // every Practitioner member must be a doctor or nurse of this server
    const members = (ctx.columns.members as MemberRow[]).map((m) => m.user_id);
    if (members.length === 0) return;
    const found = new Set(((await ctx.trx('users').whereIn('id', members).whereIn('role', ['doctor', 'nurse']).whereNull('deleted_at').select('id')) as { id: string }[]).map((u) => u.id));
    const missingMember = (ctx.columns.members as MemberRow[]).find((m) => !found.has(m.user_id));
    if (missingMember) {
      const path = `CareTeam.participant[${missingMember.position}].member`;
      throw unprocessable(`${path} refers to Practitioner/${missingMember.user_id}, which is not a doctor or nurse of this server`, path, 'not-found');
    }
  },
  references: [
    { column: 'patient_id', expression: 'CareTeam.subject', targetType: 'Patient', table: 'patients', softDelete: true },
  ],
  // isSummary in R4
  summaryElements: ['identifier', 'status', 'category', 'name', 'subject', 'encounter', 'period', 'participant', 'managingOrganization'],
  // the R4 Patient CompartmentDefinition's parameters for CareTeam
  compartment: ['patient', 'participant'],
  searchParams: [
    identifierParam('CareTeam'),
    ...patientParams('CareTeam'),
    {
      name: 'participant', source: 'index', type: 'reference', expression: 'CareTeam.participant.member',
      targets: ['Practitioner', 'PractitionerRole', 'RelatedPerson', 'Patient', 'Organization', 'CareTeam'],
      description: 'A member of the team', extract: (r) => literalRefs(participants(r as CareTeam).map((p) => p.member)),
    },
    {
      name: 'status', source: 'column', type: 'token', column: 'status', expression: 'CareTeam.status',
      description: 'proposed | active | suspended | inactive | entered-in-error (a team stated without status is active)',
      tokenToColumn: (system, code) => (system && system !== 'http://hl7.org/fhir/care-team-status' ? undefined : [code]),
    },
    {
      name: 'date', source: 'column', type: 'date', column: 'period_start', dateKind: 'timestamp', expression: 'CareTeam.period.start',
      // R4's date compares the whole period; the row compares its start
      definition: 'http://hms.example.org/fhir/SearchParameter/CareTeam-date',
      description: 'When the team started (period.start; period.end is not compared)', sort: ['period_start'],
    },
    {
      name: 'category', source: 'index', type: 'token', expression: 'CareTeam.category',
      description: 'Any coding of a category', extract: (r) => codings((r as CareTeam).category ?? []),
    },
    {
      name: 'encounter', source: 'index', type: 'reference', expression: 'CareTeam.encounter', targets: ['Encounter'],
      description: 'The encounter the team was formed in', extract: (r) => literalRefs([(r as CareTeam).encounter]),
    },
  ],
});
