export {
  createMetricsRegistry,
  registered,
  scrapedGauge,
  sharedCounter,
  METRIC_PREFIX,
  type MetricsOptions,
} from './metrics.js';
export { startHealthServer, type HealthServer, type HealthServerOptions, type ReadinessCheck } from './server.js';
export {
  scrapeWorker,
  parsePrometheusText,
  ScrapeError,
  type Sample,
  type Scrape,
  type ScrapedReadiness,
} from './scrape.js';
