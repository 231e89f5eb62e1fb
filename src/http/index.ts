/** HTTP helpers: reading incoming requests (a body with a size limit, lower-case headers), `Retry-After`, a free port. */
export { readBody, readBodyBytes, lowerHeaders } from './request.js';
export { parseRetryAfter } from './retry-after.js';
export { freePort } from './port.js';
