// write-heavy: 20% GET /api/info, 40% GET /api/buy/<item>, 40% POST /api/sendCoin, as an open model
// (constant-arrival-rate: RATE requests/s for DURATION, whatever the service does).
//   k6 run -e USERS_FILE=users.json -e BASE_URL=http://127.0.0.1:8080 -e RATE=1000 ammo/k6/write-heavy.js
import { constantRateOptions, mixer } from './lib.js';

export const options = constantRateOptions('write-heavy');

export default mixer('write-heavy');
