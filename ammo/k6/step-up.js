// Step-up: one mix (MIX, default info-heavy) at a ramping arrival rate that holds each step
// of STEPS ("start:stop:step" requests/s) for HOLD, after a RAMP from the previous step.
// Requests made while a step is held are tagged step=<rate>; ramps are tagged step=ramp, so
// the summary has the latency, failures and iterations of each step.
//   k6 run -e USERS_FILE=users.json -e STEPS=200:1600:200 -e HOLD=20s ammo/k6/step-up.js
import exec from 'k6/execution';
import { mixer, sloThresholds, vus } from './lib.js';

const MIX = __ENV.MIX || 'info-heavy';
const [start, stop, increment] = (__ENV.STEPS || '100:1000:100').split(':').map(Number);
const HOLD_S = parseFloat(__ENV.HOLD || '20s');
const RAMP_S = parseFloat(__ENV.RAMP || '2s');

export const STEPS = [];
for (let rate = start; rate <= stop; rate += increment) STEPS.push(rate);

// Seconds since the scenario's start -> the step being held, or 'ramp'.
const windows = STEPS.map((rate, i) => ({
  rate,
  from: i * (RAMP_S + HOLD_S) + RAMP_S,
  to: (i + 1) * (RAMP_S + HOLD_S),
}));

function stepAt(seconds) {
  const held = windows.find((w) => seconds >= w.from && seconds < w.to);
  return held ? String(held.rate) : 'ramp';
}

const perStep = {};
for (const rate of STEPS) {
  perStep[`http_req_duration{step:${rate}}`] = ['max>=0'];
  perStep[`http_req_failed{step:${rate}}`] = ['rate>=0'];
  perStep[`iterations{step:${rate}}`] = ['count>=0'];
}

const maxRate = STEPS[STEPS.length - 1];
export const options = {
  scenarios: {
    step_up: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      stages: STEPS.flatMap((rate) => [
        { target: rate, duration: `${RAMP_S}s` },
        { target: rate, duration: `${HOLD_S}s` },
      ]),
      gracefulStop: '10s',
      ...vus(maxRate),
    },
  },
  // A step-up is meant to cross the SLO: its thresholds report, the steps tell where.
  thresholds: sloThresholds(MIX, perStep),
  tags: { profile: `step-up-${MIX}` },
  discardResponseBodies: true,
};

const run = mixer(MIX);

export default function () {
  exec.vu.metrics.tags.step = stepAt((Date.now() - exec.scenario.startTime) / 1000);
  run();
}
