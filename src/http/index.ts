/** Reading incoming HTTP requests: a body with a size limit, lower-case headers. */
export { readBody, lowerHeaders } from './request.js';
