/** The relay's Direct Line 3.0 client: one per messaging account, the conversations stage's `DirectLinePort`. */
export { createDirectLineClient } from './client.js';
export type { DirectLineClient, DirectLineClientOptions } from './client.js';
