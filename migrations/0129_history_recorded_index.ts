import { indexMigration } from './helpers-ext.js';

const TABLE = 'resource_history';
const NAME = 'idx_recorded_key';
const COLUMNS = ['recorded_at', 'resource_type', 'resource_id', 'version_id'];

/**
 * Extension: resource_history(recorded_at, resource_type, resource_id, version_id), the index of
 * system history (GET /fhir/_history, src/fhir/history.ts). It lists the versions of many types in
 * (recorded_at, type, id, version) order, newest first, in keyset pages: with this index a page is
 * one backward range read from the cursor, whatever the table's size. Type history is served by
 * idx_type_recorded (resource_type, recorded_at), whose InnoDB entries end with the primary key.
 * The key columns are spelled out for SQLite, whose indexes end with the rowid.
 */
export const { up, down } = indexMigration(TABLE, NAME, COLUMNS);
