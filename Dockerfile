# channel-relay: one image for the workers, the CLI (register, dead-letters, config check) and the project's Dataverse
# and provider emulators. docker-compose.yml runs it with Microsoft's Service Bus emulator.
#
#   docker build -t channel-relay .
#   docker run --rm channel-relay node dist/src/cli/main.js --help
#
# Default command: the three stages in one process (workers/all.ts). Run one stage per container with
# `node dist/workers/intake.js`, `dist/workers/dispatch.js`, `dist/workers/recorder.js` or `dist/workers/callbacks.js`;
# each requires only what its stage uses (README "Running the workers").

# The current Node LTS: Node 26 is Active LTS from 2026-10-28 until 2027-10-20, maintained until 2029-04-30 (nodejs/Release
# README, "Release schedule"). The code runs on Node 20.19+ (package.json engines); `npm run test:lts` runs the unit
# tests and `npm start` on this line's binary (README "Requirements"). `--build-arg NODE_IMAGE=node:24-slim` builds on
# the maintenance LTS.
ARG NODE_IMAGE=node:26-slim

# --- build: every dependency, TypeScript → dist/ -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# postinstall runs patch-package, which applies patches/: they must be there before `npm ci`.
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
# tsc -p tsconfig.build.json: src/ → dist/src/, workers/ → dist/workers/
RUN npm run build

# --- runtime: production dependencies, the compiled code, config/ ---------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# V8's heap sizing. Without a limit, V8 takes about 4 GB as the old generation's maximum on a large host and then lets
# the heap grow to 4x what survived the last full collection before it collects again: a worker whose live heap is
# 30-40 MB sat at 350-380 MB RSS (docs/benchmarks.md, "Pipeline"). The growth factor shrinks with the maximum (V8:
# 1.3x at <= 256 MB, rising to 4x at 2 GB, 64-bit): 1 GB gives 1.6x, which keeps a worker near 150-160 MB RSS for about
# the same CPU; 128 MB (1.3x) saves another 10-20 MB but costs about a third more CPU in full collections. The young
# generation's semi-spaces at 8 MB instead of 16 take another 15-20 MB off each worker's peak for no CPU that the
# pipeline benchmark could tell apart (1.164 vs 1.180 ms per activity, 2026-12-07, quiet; a 512 MB old space did cost
# 14 %). The emulators and the CLI in this image get the same setting.
ENV NODE_OPTIONS="--max-old-space-size=1024 --max-semi-space-size=8"
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# patch-package is a dependency (not a devDependency), so postinstall still applies patches/ here.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The embedded defaults, schemas, channels, tiles, the sample seed and the Service Bus emulator's Config.json.
COPY config ./config

# The node image's unprivileged user; nothing in /app needs to be writable.
USER node

# The workers' health server (health.port / HEALTH_PORT, default 8080). Node has fetch; the slim image has no curl.
# docker-compose.yml replaces this check for the emulators and turns it off for one-shot commands.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Workers stop on SIGTERM within shutdown.budgetMs (SHUTDOWN_BUDGET_MS, default 15 s) plus the provider timeout:
# give `docker stop` / compose a grace period to match (stop_grace_period in docker-compose.yml).
STOPSIGNAL SIGTERM
CMD ["node", "dist/workers/all.js"]
