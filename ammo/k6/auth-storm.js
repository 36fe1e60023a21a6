// auth-storm: 80% GET /api/info, 10% sign-ups and 10% logins on POST /api/auth (argon2id-bound), as an open model
// (constant-arrival-rate: RATE requests/s for DURATION, whatever the service does).
//   k6 run -e USERS_FILE=users.json -e BASE_URL=http://127.0.0.1:8080 -e RATE=1000 ammo/k6/auth-storm.js
import { constantRateOptions, mixer } from './lib.js';

export const options = constantRateOptions('auth-storm');

export default mixer('auth-storm');
