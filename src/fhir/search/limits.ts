/**
 * The bounds a search request must stay within (OWASP API4, unrestricted resource consumption):
 * each one caps how much SQL one request can make the database run. Above a bound the search
 * answers 400 with an OperationOutcome (code too-costly) naming it. https://hl7.org/fhir/R4/search.html
 */

/** Bounds on one search request; each defaults to the value of the same name in DEFAULT_SEARCH_LIMITS. */
export interface SearchLimits {
  /** Search parameters per request, each occurrence counted (repeats and chains included; _count, _sort ... not). */
  maxParams: number;
  /** Occurrences of one parameter name (identifier=a&identifier=b is two): each one is an AND-ed condition. */
  maxRepeats: number;
  /** Values OR-ed with commas, per parameter and in the whole search (each is a bound SQL value). */
  maxValues: number;
  /** _include and _revinclude values (with or without :iterate) per request. */
  maxIncludes: number;
  /** Keys in _sort: each is two ORDER BY terms and, on later pages, a keyset condition per key before it. */
  maxSortKeys: number;
  /**
   * Characters (code points) of one value, each comma-separated value of a parameter counted
   * alone: a value becomes a bound SQL value, often a LIKE pattern (SQLite refuses patterns over
   * 50,000 bytes), and may be quoted back in a diagnostic.
   */
  maxValueLength: number;
  /** Characters of a parameter name, modifiers and chain included (names are quoted back in diagnostics). */
  maxNameLength: number;
}

/** Chained parameters go this many levels deep (a.b); deeper chains are a 400. */
export const MAX_CHAIN_DEPTH = 1;

/** The defaults, also the bounds of contexts that do not set their own (workers, tools). */
export const DEFAULT_SEARCH_LIMITS: Readonly<SearchLimits> = Object.freeze({
  maxParams: 30,
  maxRepeats: 10,
  maxValues: 1000,
  maxIncludes: 10,
  maxSortKeys: 10,
  maxValueLength: 2048,
  maxNameLength: 256,
});

/** The configuration variables behind the bounds (named in the 400s so an operator can find them). */
export const LIMIT_VARIABLES: Readonly<Record<keyof SearchLimits, string | undefined>> = Object.freeze({
  maxParams: 'HMS_SEARCH_MAX_PARAMS',
  maxRepeats: 'HMS_SEARCH_MAX_REPEATS',
  maxValues: 'HMS_SEARCH_MAX_VALUES',
  maxIncludes: 'HMS_SEARCH_MAX_INCLUDES',
  maxSortKeys: undefined,
  maxValueLength: 'HMS_SEARCH_MAX_VALUE_LENGTH',
  maxNameLength: undefined,
});

/** What the server bounds beyond one search's shape, for the CapabilityStatement's documentation. */
export interface ServerLimits {
  search: SearchLimits;
  /** Largest _count. */
  maxCount: number;
  /** Included resources per page. */
  maxIncluded: number;
  /** Seconds a database statement may run (0: no limit). */
  statementTimeout: number;
  /** Requests per client and window (0: no limit). */
  rateLimit: number;
  /** That window, in seconds. */
  rateLimitWindow: number;
}

/** One paragraph (markdown) stating every bound, for CapabilityStatement.rest.documentation. */
export function limitsDocumentation(l: ServerLimits): string {
  const s = l.search;
  const lines = [
    'Bounds on every request (above a search bound: 400 OperationOutcome, code too-costly):',
    `at most ${s.maxParams} search parameters per search (each occurrence counted), ${s.maxRepeats} occurrences of one parameter,`,
    `${s.maxValues} comma-separated (OR-ed) values per parameter and per search, chains ${MAX_CHAIN_DEPTH} level deep,`,
    `${s.maxIncludes} _include/_revinclude values (one :iterate level, at most ${l.maxIncluded} included resources per page),`,
    `${s.maxSortKeys} _sort keys, _count at most ${l.maxCount},`,
    `${s.maxValueLength} characters per value (each comma-separated value counted alone) and ${s.maxNameLength} per parameter name.`,
    l.statementTimeout > 0
      ? `A database statement that runs longer than ${l.statementTimeout} s is stopped: 503 OperationOutcome (code timeout) with Retry-After.`
      : 'Database statements have no time limit on this server.',
    l.rateLimit > 0
      ? `Each user or system client (else each IP address) may make ${l.rateLimit} requests per ${l.rateLimitWindow} s: 429 OperationOutcome (code throttled) with Retry-After above it.`
      : 'Requests are not rate limited by this server.',
  ];
  return lines.join(' ');
}

/** The configuration variables of the search bounds (HMS_SEARCH_*). */
export interface SearchLimitsConfig {
  HMS_SEARCH_MAX_PARAMS: number;
  HMS_SEARCH_MAX_REPEATS: number;
  HMS_SEARCH_MAX_VALUES: number;
  HMS_SEARCH_MAX_INCLUDES: number;
  /** Optional: contexts built before the bound existed (tools, tests) get the default. */
  HMS_SEARCH_MAX_VALUE_LENGTH?: number;
}

const fromConfig = new WeakMap<SearchLimitsConfig, SearchLimits>();

/** The search bounds a configuration sets (one object per configuration, built once). */
export function searchLimitsOf(config: SearchLimitsConfig): SearchLimits {
  let limits = fromConfig.get(config);
  if (!limits) {
    limits = Object.freeze({
      ...DEFAULT_SEARCH_LIMITS,
      maxParams: config.HMS_SEARCH_MAX_PARAMS ?? DEFAULT_SEARCH_LIMITS.maxParams,
      maxRepeats: config.HMS_SEARCH_MAX_REPEATS ?? DEFAULT_SEARCH_LIMITS.maxRepeats,
      maxValues: config.HMS_SEARCH_MAX_VALUES ?? DEFAULT_SEARCH_LIMITS.maxValues,
      maxIncludes: config.HMS_SEARCH_MAX_INCLUDES ?? DEFAULT_SEARCH_LIMITS.maxIncludes,
      maxValueLength: config.HMS_SEARCH_MAX_VALUE_LENGTH ?? DEFAULT_SEARCH_LIMITS.maxValueLength,
    });
    fromConfig.set(config, limits);
  }
  return limits;
}
