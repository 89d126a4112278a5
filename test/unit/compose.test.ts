/**
 * docker-compose.yml, validated where no container engine runs (CI has none): it parses, with its
 * anchors; every service has an image or a build; depends_on names services of the same profile,
 * with conditions their targets can meet; named volumes are declared and mounted files exist; the
 * `ha` profile's HAProxy and Sentinel configuration name its services, and its HMS environment is
 * one loadConfig accepts (DATABASE_URL to HAProxy, REDIS_URL through the sentinels).
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { redisConnectOptions } from '../../src/workers/redis.js';
import { ROOT } from '../helpers/processes.js';

interface Service {
  image?: string; build?: unknown; command?: unknown; profiles?: string[]; environment?: Record<string, string>;
  depends_on?: string[] | Record<string, { condition: string }>; volumes?: string[]; healthcheck?: unknown; ports?: string[];
}
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const profile = (s: Service) => (s.profiles ?? []).join(',');
const deps = (s: Service): [string, string][] => Array.isArray(s.depends_on) ? s.depends_on.map((d) => [d, 'service_started']) : Object.entries(s.depends_on ?? {}).map(([d, c]) => [d, c.condition]);

t.test('the compose file: top level, services, dependencies, volumes, ports', async (t) => {
  t.same(Object.keys(compose).filter((k) => !['services', 'volumes', 'networks', 'configs', 'secrets', 'name'].includes(k)), [], 'only keys the compose spec knows');
  const hostPorts = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    t.ok(s.image || s.build, `${name} has an image or a build`);
    t.ok((s.profiles ?? []).every((p) => p === 'ha'), `${name}: profiles are the ha one or none`);
    for (const [dep, condition] of deps(s)) {
      t.ok(services[dep], `${name} depends on ${dep}, a service`);
      if (!services[dep]) continue;
      t.equal(profile(services[dep]), profile(s), `${name} and ${dep} start together (same profile)`);
      t.ok(['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition), `${name} -> ${dep}: a known condition`);
      if (condition === 'service_healthy') t.ok(services[dep].healthcheck, `${dep} has the healthcheck ${name} waits for`);
      if (condition === 'service_completed_successfully') t.same(services[dep].command, ['migrate'], `${dep}, awaited to complete, is the one-shot migration`);
    }
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (source.startsWith('./')) t.ok(existsSync(join(ROOT, source)), `${name} mounts ${source}, which exists`);
      else t.ok(compose.volumes && source in compose.volumes, `${name}'s volume ${source} is declared`);
    }
    for (const p of s.ports ?? []) {
      const host = p.split(':')[0]!;
      t.notOk(hostPorts.has(host), `host port ${host} published once (${name})`);
      hostPorts.set(host, name);
    }
  }
});

t.test('the ha profile: HAProxy and Sentinel name its services; its HMS environment loads', async (t) => {
  const ha = Object.fromEntries(Object.entries(services).filter(([, s]) => profile(s) === 'ha'));
  for (const name of ['galera1', 'galera2', 'galera3', 'haproxy', 'redis-master', 'redis-replica', 'sentinel1', 'sentinel2', 'sentinel3', 'api1', 'api2', 'worker-ha']) t.ok(ha[name], `${name} is in the ha profile`);
  const haproxy = readFileSync(join(ROOT, 'deploy/ha/haproxy.cfg'), 'utf8');
  const servers = [...haproxy.matchAll(/^\s*server (\S+) ([^:\s]+):(\d+)/gm)];
  t.same(servers.map((m) => m[2]).sort(), ['api1', 'api2', 'galera1', 'galera2', 'galera3'], 'HAProxy balances the Galera nodes and the API processes');
  for (const m of servers) t.ok(ha[m[2]!], `HAProxy's ${m[2]} is a service of the profile`);
  t.match(haproxy, /server galera2 \S+ check backup/, 'one Galera node takes the writes, the others stand by');
  t.match(haproxy, /option httpchk GET \/health\/ready/, 'the API is checked on readiness');
  const sentinel = readFileSync(join(ROOT, 'deploy/ha/sentinel.conf'), 'utf8');
  const monitor = /^sentinel monitor (\S+) (\S+) (\d+) (\d+)$/m.exec(sentinel);
  t.ok(monitor && ha[monitor[2]!], 'the sentinels monitor redis-master');
  t.equal(Number(monitor?.[4]), 2, 'quorum 2 of 3');

  const env = ha.api1!.environment!;
  t.same(ha.api2!.environment, env, 'the two API processes share one environment');
  t.same(ha['worker-ha']!.environment, env, 'and the worker');
  const config = loadConfig(env);
  t.equal(new URL(config.DATABASE_URL!).hostname, 'haproxy', 'the database through HAProxy');
  const redis = redisConnectOptions(config.REDIS_URL!);
  t.same(redis.options.sentinels?.map((s) => `${s.host}:${s.port}`), ['sentinel1:26379', 'sentinel2:26379', 'sentinel3:26379'], 'Redis through the three sentinels');
  t.equal(redis.options.name, monitor?.[1], 'naming the master they monitor');
  for (const s of redis.options.sentinels ?? []) t.ok(s.host && ha[s.host], `${s.host} is a service`);
});
