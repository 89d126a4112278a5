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

const DB_ERROR_CODE = /^(ER_|SQLITE_|ECONN|PROTOCOL_)/;

/**
 * Errors as logged: database errors keep their code and driver number but not their message, which
 * quotes values ("Duplicate entry 'Jane Doe' ..."); other errors keep message and stack.
 */
export function errorForLog(err: unknown): { type: string; message: string; stack: string; [k: string]: unknown } {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err), stack: '' };
  const e = err as Error & { code?: string; errno?: number; nativeError?: Error & { code?: string; errno?: number } };
  const native = e.nativeError ?? e;
  const code = native.code ?? e.code;
  if (code && DB_ERROR_CODE.test(code)) return { type: e.name, code, errno: native.errno, message: 'database error (message withheld: it may quote patient data)', stack: '' };
  return { type: e.name, code, message: e.message, stack: e.stack ?? '' };
}

export function loggerOptions(level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      err: errorForLog,
      // only the path: query strings carry search values such as names and birth dates
      req: (req: { method: string; url: string; id: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
    },
  };
}
