/** Importing this module registers every exposed resource type. */
export { PatientDefinition } from './Patient.js';
