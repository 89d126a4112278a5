/** pino settings: structured logs with credentials and bodies redacted (no PHI in logs). */
import type { FastifyServerOptions } from 'fastify';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["if-none-exist"]',
  'req.body',
  'res.body',
  'body',
  'password',
  '*.password',
  'email',
  '*.email',
];

export function loggerOptions(level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // only the path: query strings carry search values such as names and birth dates
      req: (req: { method: string; url: string; id: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
    },
  };
}
