/** The Fastify application factory: the server, the CLI and the tests all build the app here. */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import '../fhir/resources/index.js';
import { allResourceDefinitions, resourceDefinition } from '../fhir/registry.js';
import { warmValidators } from '../fhir/validate.js';
import { FhirError } from '../fhir/outcome.js';
import { warmPasswordTiming } from '../auth/passwords.js';
import { packageVersion } from '../version.js';
import databasePlugin from './plugins/database.js';
import redisPlugin from './plugins/redis.js';
import errorsPlugin, { sendOutcome, toFhirError } from './plugins/errors.js';
import fhirJsonPlugin from './plugins/fhir-json.js';
import authenticatePlugin from './plugins/authenticate.js';
import httpSurfacePlugin from './plugins/http-surface.js';
import clientErrorsPlugin, { clientErrorHandler, securityHeadersOf } from './plugins/client-errors.js';
import { DOCS_CSP } from './plugins/security-headers.js';
import { allowedMethods, trackRoutes } from './route-table.js';
import healthRoutes from './routes/health.js';
import authRoutes from './routes/auth.js';
import tokenRoutes from './routes/token.js';
import smartConfigurationRoutes from './routes/smart-configuration.js';
import adminClientRoutes from './routes/admin-clients.js';
import adminUserRoutes from './routes/admin-users.js';
import metadataRoutes from './routes/metadata.js';
import fhirRoutes from './routes/fhir.js';
import adminBreakGlassRoutes from './routes/admin-break-glass.js';
import { loggerOptions } from '../logger.js';
import type { JobQueues } from '../workers/jobs.js';
import jobsPlugin from './plugins/jobs.js';
import ingestRoutes from './routes/ingest.js';
import queueBoardRoutes from './routes/queue-board.js';
import metricsPlugin from './plugins/metrics.js';
import overloadPlugin from './plugins/overload.js';
import requestLogPlugin from './plugins/request-log.js';

export interface BuildOptions {
  config: Config;
  /** Use this open database instead of opening one from the config. */
  db?: Knex;
  /** Fastify logger setting; defaults to pino at config.LOG_LEVEL with redaction. */
  logger?: FastifyServerOptions['logger'];
  /** The job transport (the embedded mode's in-process runner); default: BullMQ when REDIS_URL is set. */
  jobs?: JobQueues;
}

const FHIR_PATH = /^\/fhir\/([A-Za-z]+)(?:\/[^/?]+(?:\/_history(?:\/[^/?]+)?)?|\/_search)?\/?(?:\?.*)?$/;

/** Builds the HMS application (not listening). */
export async function buildApp(opts: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? loggerOptions(opts.config.LOG_LEVEL),
    bodyLimit: opts.config.HMS_BODY_LIMIT,
    // a whole request within 5 minutes (Node's own default, which Fastify turns off): a client that
    // trickles its body cannot hold a connection for ever
    requestTimeout: 300_000,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } },
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: () => crypto.randomUUID(),
    // one line per request, with its interaction, caller and timing (plugins/request-log.ts)
    logController: new LogController({ disableRequestLogging: true }),
    // errors raised before routing (bad URL encoding, over-long parameters) answer as OperationOutcomes too
    // (before the onRequest hooks, so the security headers are added here)
    frameworkErrors: (err, _request, reply) => { void sendOutcome(reply.headers(securityHeadersOf(app.server)), toFhirError(err)); },
    // and so do requests Node's HTTP parser refuses, and HTTP/1.1 requests without Host (plugins/client-errors.ts)
    clientErrorHandler,
    http: { requireHostHeader: false },
  });

  // every route's path and methods, for the Allow header of a 405
  const routes = trackRoutes(app);
  // shutting down (SIGTERM, src/shutdown.ts): /health/ready answers 503, and each answer closes its
  // keep-alive connection, so the in-flight requests' connections do not hold the close open
  app.decorate('draining', false);
  app.addHook('onSend', async (_request, reply, payload) => {
    if (app.draining) reply.header('connection', 'close');
    return payload;
  });

  await app.register(databasePlugin, { config: opts.config, db: opts.db });
  await app.register(redisPlugin);
  await app.register(jobsPlugin, { jobs: opts.jobs });
  await app.register(errorsPlugin);
  await app.register(fhirJsonPlugin);
  await app.register(authenticatePlugin);
  await app.register(httpSurfacePlugin);
  await app.register(clientErrorsPlugin);
  await app.register(metricsPlugin);
  await app.register(requestLogPlugin);
  await app.register(swagger, {
    openapi: {
      info: { title: 'HMS FHIR R4 API', version: packageVersion, description: 'FHIR R4 interoperability service. Resource bodies are application/fhir+json.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // no outside validator: it would be sent the spec's URL; DOCS_CSP replaces the API's CSP on /docs
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP, uiConfig: { validatorUrl: null } });

  await app.register(healthRoutes);
  await app.register(authRoutes);
  await app.register(tokenRoutes);
  await app.register(smartConfigurationRoutes);
  await app.register(adminClientRoutes);
  await app.register(adminUserRoutes);
  await app.register(adminBreakGlassRoutes);
  await app.register(metadataRoutes);
  await app.register(fhirRoutes);
  await app.register(ingestRoutes);
  await app.register(queueBoardRoutes);

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const m = FHIR_PATH.exec(request.url);
    if (m && m[1] !== 'metadata' && !resourceDefinition(m[1]!)) {
      return sendOutcome(reply, new FhirError(404, `Resource type '${m[1]}' is not supported by this server`, 'not-supported'));
    }
    const allow = allowedMethods(routes, path);
    if ((m && m[1] !== 'metadata') || allow) {
      return sendOutcome(reply, new FhirError(405, `${request.method} is not allowed on ${path}`, 'not-supported', allow ? { Allow: allow } : {}));
    }
    return sendOutcome(reply, new FhirError(404, `No route ${request.method} ${path}`, 'not-found'));
  });

  warmValidators(allResourceDefinitions().map((d) => d.type));
  warmPasswordTiming(opts.config.HMS_BCRYPT_COST);
  // last: its event-loop sampler starts here, so the seconds spent compiling validators above are
  // not taken for overload
  await app.register(overloadPlugin);
  return app;
}
