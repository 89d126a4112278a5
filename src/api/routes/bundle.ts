/** FHIR routes: batch and transaction Bundles at POST /fhir. https://hl7.org/fhir/R4/http.html#transaction */
import type { FastifyInstance } from 'fastify';
import { processBundle } from '../../fhir/exchange/transaction.js';
import { FHIR_JSON } from '../plugins/fhir-json.js';
import { fhirContext, preferences } from './fhir-context.js';

export function bundleRoutes(app: FastifyInstance): void {
  app.post('/fhir', {
    schema: {
      tags: ['System'],
      summary: 'Run a batch or transaction Bundle (transaction: all or nothing, one database transaction)',
      body: { type: 'object', additionalProperties: true, description: 'A Bundle of type batch or transaction' },
    },
  }, async (request, reply) => {
    const bundle = await processBundle(fhirContext(request), request.body, {
      maxEntries: app.config.HMS_BUNDLE_MAX_ENTRIES,
      return: preferences(request).return,
      onError: (err, entry) => request.log.error({ err, entry }, 'batch entry failed'),
    });
    return reply.code(200).type(FHIR_JSON).send(bundle);
  });
}
