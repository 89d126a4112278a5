/**
 * Load generation with autocannon (programmatic API) and what each measurement records:
 * throughput, latency percentiles (from every response time, not autocannon's whole-ms
 * histogram), status codes, the CPU the server and the database used, and the SQL statements
 * the database executed per request (from SHOW GLOBAL STATUS deltas).
 */
import autocannon from 'autocannon';
import { ACCESS_SCENARIOS, type Asker, type ScenarioName } from './config.js';
import { cpuSeconds, machineBusySeconds } from './processes.js';
import { LOADTEST_FAMILY } from './seed.js';

export type Side = 'hms' | 'floor';

/** What the load generator needs to know for one scenario on one side. */
export interface LoadRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** A new path for each request (random id, random prefix ...). */
  path: () => string;
  body?: string;
}

export interface ScenarioInputs {
  /** Seeded patient ids to read (as admin and as a system). */
  ids: string[];
  /** The observation scenario: a LOINC code and the date observations are searched from. */
  observation: { code: string; since: string };
  /** Seeded Immunizations (generic store) to read by id. */
  immunizationIds?: string[];
  /** The generic search: Immunizations of a patient since this date (YYYY-MM-DD). */
  immunizationSince?: string;
  /** Family-name prefixes of seeded patients to search for. */
  prefixes: string[];
  /** Bearer token of an HMS admin session. */
  token: string;
  /** The other askers of the access scenarios: their bearer token and the patient ids they read. */
  askers?: Partial<Record<Exclude<Asker, 'admin'>, { token: string; ids: string[] }>>;
}

const any = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!;

/** The request of a scenario against HMS and against the floor. */
export function scenarioRequests(name: ScenarioName, inputs: ScenarioInputs): Record<Side, LoadRequest> {
  const access = ACCESS_SCENARIOS[name];
  if (access) {
    const asker = inputs.askers?.[access.as];
    if (!asker) throw new Error(`scenario ${name} needs a ${access.as} to ask as`);
    return scenarioRequests(access.base, { ...inputs, token: asker.token, ids: asker.ids });
  }
  const hmsHeaders = { authorization: `Bearer ${inputs.token}`, accept: 'application/fhir+json' };
  const floorHeaders = { accept: 'application/json' };
  switch (name) {
    case 'read':
      return {
        hms: { method: 'GET', headers: hmsHeaders, path: () => `/fhir/Patient/${any(inputs.ids)}` },
        floor: { method: 'GET', headers: floorHeaders, path: () => `/floor/patient/${any(inputs.ids)}` },
      };
    case 'search':
      return {
        hms: { method: 'GET', headers: hmsHeaders, path: () => `/fhir/Patient?name=${encodeURIComponent(any(inputs.prefixes))}` },
        floor: { method: 'GET', headers: floorHeaders, path: () => `/floor/patient?name=${encodeURIComponent(any(inputs.prefixes))}` },
      };
    case 'observation': {
      const { code, since } = inputs.observation;
      return {
        hms: { method: 'GET', headers: hmsHeaders, path: () => `/fhir/Observation?patient=${any(inputs.ids)}&code=${encodeURIComponent(`http://loinc.org|${code}`)}&date=ge${since}` },
        floor: { method: 'GET', headers: floorHeaders, path: () => `/floor/observation?patient=${any(inputs.ids)}&code=${code}&date=${since}` },
      };
    }
    case 'generic-read': {
      const ids = inputs.immunizationIds ?? [];
      if (!ids.length) throw new Error('scenario generic-read needs seeded Immunizations (reseed with BENCH_RESET=1)');
      return {
        hms: { method: 'GET', headers: hmsHeaders, path: () => `/fhir/Immunization/${any(ids)}` },
        floor: { method: 'GET', headers: floorHeaders, path: () => `/floor/immunization/${any(ids)}` },
      };
    }
    case 'generic-search': {
      const since = inputs.immunizationSince ?? '2000-01-01';
      return {
        hms: { method: 'GET', headers: hmsHeaders, path: () => `/fhir/Immunization?patient=${any(inputs.ids)}&date=ge${since}` },
        floor: { method: 'GET', headers: floorHeaders, path: () => `/floor/immunization?patient=${any(inputs.ids)}&date=${since}` },
      };
    }
    case 'everything':
      return {
        hms: { method: 'GET', headers: hmsHeaders, path: () => `/fhir/Patient/${any(inputs.ids)}/$everything` },
        floor: { method: 'GET', headers: floorHeaders, path: () => `/floor/everything/${any(inputs.ids)}` },
      };
    case 'create':
    default: // the access scenarios were mapped onto their base above
      return {
        hms: {
          method: 'POST', headers: { ...hmsHeaders, 'content-type': 'application/fhir+json' }, path: () => '/fhir/Patient',
          body: JSON.stringify({ resourceType: 'Patient', active: true, name: [{ use: 'official', family: LOADTEST_FAMILY, given: ['Ada'] }], gender: 'female', birthDate: '1990-04-01' }),
        },
        floor: {
          method: 'POST', headers: { ...floorHeaders, 'content-type': 'application/json' }, path: () => '/floor/patient',
          body: JSON.stringify({ family: LOADTEST_FAMILY, given: 'Ada', gender: 'female', birthDate: '1990-04-01' }),
        },
      };
  }
}

/** Global status counters of the database server (Questions, Com_select ...). */
export type StatusCounters = Record<string, number>;

export const STATUS_COUNTERS = ['Questions', 'Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_commit', 'Com_begin'] as const;

export interface Measurement {
  /** Completed requests (any status). */
  requests: number;
  seconds: number;
  /** autocannon's mean of per-second request counts. */
  reqPerSec: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /**
   * CPU used during the measurement, in cores (1.0 = one core fully busy): the server under load,
   * the database server, this process (autocannon), the whole machine, and other = machine minus
   * those three (other processes, kernel work charged to none of them: noise when it is large).
   */
  cpuCores: { server?: number; database?: number; loadGenerator: number; machine?: number; other?: number };
  /** SQL the database executed per completed request. */
  sqlPerRequest: Record<string, number>;
  /** When the load ran, in CLOCK_MONOTONIC microseconds (to cut a CPU profile to it). */
  window: { fromUs: number; toUs: number };
}

export interface MeasureOptions {
  url: string;
  connections: number;
  duration: number;
  request: LoadRequest;
  serverPid?: number;
  databasePid?: number;
  status?: () => Promise<StatusCounters>;
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN;

function load(opts: MeasureOptions, duration: number, onTime?: (ms: number, status: number) => void): Promise<autocannon.Result> {
  const { request } = opts;
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: opts.url,
      connections: opts.connections,
      pipelining: 1,
      duration,
      timeout: 10,
      requests: [{
        method: request.method,
        headers: request.headers,
        body: request.body,
        setupRequest: (req) => ({ ...req, path: request.path() }),
      }],
    }, (err: unknown, result: autocannon.Result) => (err ? reject(err) : resolve(result)));
    if (onTime) instance.on('response', (_client, status, _bytes, ms) => onTime(ms, status));
  });
}

/** Unrecorded load, so that JIT, pools and caches are warm before a measurement. */
export async function warmUp(opts: MeasureOptions, seconds: number): Promise<void> {
  if (seconds > 0) await load(opts, seconds);
}

export async function measure(opts: MeasureOptions): Promise<Measurement> {
  const times: number[] = [];
  const before = {
    status: await opts.status?.(), server: cpuSeconds(opts.serverPid), db: cpuSeconds(opts.databasePid), machine: machineBusySeconds(),
    self: process.cpuUsage(), at: process.hrtime.bigint(),
  };
  const result = await load(opts, opts.duration, (ms, status) => {
    if (status >= 200 && status < 300) times.push(ms);
  });
  const end = process.hrtime.bigint();
  const seconds = Number(end - before.at) / 1e9;
  const after = { machine: machineBusySeconds(), server: cpuSeconds(opts.serverPid), db: cpuSeconds(opts.databasePid), self: process.cpuUsage(before.self), status: await opts.status?.() };

  const sorted = Float64Array.from(times).sort();
  const requests = result.requests.total;
  const sqlPerRequest: Record<string, number> = {};
  if (before.status && after.status && requests > 0) {
    for (const key of STATUS_COUNTERS) {
      sqlPerRequest[key] = (after.status[key]! - before.status[key]!) / requests;
    }
  }
  const cores = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined ? (b - a) / seconds : undefined);
  const server = cores(before.server, after.server);
  const database = cores(before.db, after.db);
  const loadGenerator = (after.self.user + after.self.system) / 1e6 / seconds;
  const machine = cores(before.machine, after.machine);
  const other = machine !== undefined && server !== undefined && database !== undefined ? Math.max(0, machine - server - database - loadGenerator) : undefined;
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat?.count ?? 0;
  return {
    requests,
    seconds,
    reqPerSec: result.requests.average,
    latencyMs: {
      mean: times.length ? times.reduce((a, b) => a + b, 0) / times.length : NaN,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: percentile(sorted, 100),
    },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    cpuCores: { server, database, loadGenerator, machine, other },
    sqlPerRequest,
    window: { fromUs: Number(before.at / 1000n), toUs: Number(end / 1000n) },
  };
}
