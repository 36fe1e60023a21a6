// Shared pieces of the shop's k6 scripts: users, the five operations, the request mixes,
// open-model scenarios and the SLO thresholds. Settings come from k6 -e NAME=value or the
// environment (python -m ammo passes its own and yours through):
//   USERS_FILE (required)  {"users": [{"name", "token"}]}, from `python -m ammo seed`
//   BASE_URL               the service (default http://127.0.0.1:8080)
//   RATE, DURATION         arrivals per second and for how long (default 100, 30s)
//   PRE_VUS, MAX_VUS       VUs allocated up front and at most: requests in flight beyond
//                          MAX_VUS are dropped arrivals (default rate/2, at least 200, both)
//   SLO_P99_MS             the latency threshold (default 50); REQUEST_TIMEOUT (default 10s)
//   LOAD_PASSWORD          the seeded users' password (as ammo/seed.py)
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { SharedArray } from 'k6/data';

export const MIXES = JSON.parse(open('./mixes.json'));
const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const PASSWORD = __ENV.LOAD_PASSWORD || 'load-test-password';
// Cheap items keep seeded users solvent through long write-heavy runs.
const ITEMS = ['pen', 'socks', 'cup'];
const TIMEOUT = __ENV.REQUEST_TIMEOUT || '10s';
// The service's SLIs count 5xx as failures; 4xx are answers (a poor buyer, a throttled login).
// Statuses a route may legitimately answer are checked per operation below.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 499 }));

// [{name, token}], written by `python -m ammo` (tokens the service under test accepts).
const users = new SharedArray('users', () => {
  if (!__ENV.USERS_FILE) throw new Error('set USERS_FILE (python -m ammo seed writes one)');
  return JSON.parse(open(__ENV.USERS_FILE)).users;
});

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

function params(route, op, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return { headers, timeout: TIMEOUT, tags: { route, op } };
}

function expect(response, op, statuses) {
  const name = `${op}: status ${statuses.join(' or ')}`;
  check(response, { [name]: (r) => statuses.includes(r.status) }, { op });
}

export const OPERATIONS = {
  info() {
    const r = http.get(`${BASE_URL}/api/info`, params('/api/info', 'info', pick(users).token));
    expect(r, 'info', [200]);
  },
  buy() {
    const url = `${BASE_URL}/api/buy/${pick(ITEMS)}`;
    const r = http.get(url, params('/api/buy/<item>', 'buy', pick(users).token));
    expect(r, 'buy', [200, 400]); // 400: not enough coins left
  },
  send() {
    const i = Math.floor(Math.random() * users.length);
    const j = (i + 1 + Math.floor(Math.random() * (users.length - 1))) % users.length;
    const body = JSON.stringify({ toUser: users[j].name, amount: 1 });
    const r = http.post(`${BASE_URL}/api/sendCoin`, body, params('/api/sendCoin', 'send', users[i].token));
    expect(r, 'send', [200, 400]); // 400: not enough coins left
  },
  login() {
    const body = JSON.stringify({ username: pick(users).name, password: PASSWORD });
    const r = http.post(`${BASE_URL}/api/auth`, body, params('/api/auth', 'login'));
    expect(r, 'login', [200, 429]); // 429: the hashing queue is full or the login throttled
  },
  signup() {
    const name = `signup-${exec.vu.idInTest}-${exec.vu.iterationInInstance}-${Date.now()}`;
    const body = JSON.stringify({ username: name, password: PASSWORD });
    const r = http.post(`${BASE_URL}/api/auth`, body, params('/api/auth', 'signup'));
    expect(r, 'signup', [200, 429]);
  },
};

// Return a function that runs one operation drawn by the mix's weights.
export function mixer(mixName) {
  const mix = MIXES[mixName];
  if (!mix) throw new Error(`unknown mix ${mixName}; known: ${Object.keys(MIXES).join(', ')}`);
  const ops = Object.keys(mix);
  const total = ops.reduce((sum, op) => sum + mix[op], 0);
  return function () {
    let draw = Math.random() * total;
    for (const op of ops) {
      draw -= mix[op];
      if (draw < 0) return OPERATIONS[op]();
    }
    return OPERATIONS[ops[ops.length - 1]]();
  };
}

// Every VU up front by default: when no VU is free, k6 drops that arrival and only then starts
// a new VU in the background, so a 50 ms blip at 1,000 req/s with 50 VUs ready showed as
// "dropped" though 450 more were allowed. A drop now means MAX_VUS requests in flight.
export function vus(rate) {
  const max = Number(__ENV.MAX_VUS || Math.max(200, Math.ceil(rate / 2)));
  const pre = Number(__ENV.PRE_VUS || max);
  return { preAllocatedVUs: pre, maxVUs: Math.max(pre, max) };
}

// One open-model scenario: RATE iterations (one request each) per second for DURATION.
export function constantRate() {
  const rate = Number(__ENV.RATE || 100);
  return {
    executor: 'constant-arrival-rate',
    rate,
    timeUnit: '1s',
    duration: __ENV.DURATION || '30s',
    gracefulStop: '10s',
    ...vus(rate),
  };
}

export const STATUSES = [200, 400, 429, 503, 0];

// The SLO as thresholds (k6 exits 99 when one is crossed), plus per-operation sub-metrics that
// always pass: k6 reports a sub-metric only when a threshold names it.
export function sloThresholds(mixName, extra = {}) {
  const thresholds = {
    http_req_duration: [`p(99)<=${Number(__ENV.SLO_P99_MS || 50)}`],
    http_req_failed: ['rate<=0.0001'],
    dropped_iterations: ['count==0'],
    checks: ['rate>=0.9999'],
  };
  for (const op of Object.keys(MIXES[mixName])) {
    thresholds[`http_req_duration{op:${op}}`] = ['max>=0'];
    thresholds[`http_req_failed{op:${op}}`] = ['rate>=0'];
    thresholds[`checks{op:${op}}`] = ['rate>=0'];
  }
  // Served answers, refusals (503) and no answer at all (status 0: a timeout or a reset),
  // apart: past the knee their latencies tell different stories.
  for (const status of STATUSES) {
    thresholds[`http_req_duration{status:${status}}`] = ['max>=0'];
    thresholds[`http_reqs{status:${status}}`] = ['count>=0'];
  }
  return { ...thresholds, ...extra };
}

// Options of a profile held at one arrival rate.
export function constantRateOptions(mixName) {
  return {
    scenarios: { [mixName]: constantRate() },
    thresholds: sloThresholds(mixName),
    tags: { profile: mixName },
    discardResponseBodies: true,
  };
}
