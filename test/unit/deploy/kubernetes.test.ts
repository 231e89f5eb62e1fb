/**
 * deploy/kubernetes/, checked without a cluster: every manifest against the Kubernetes and KEDA schemas
 * (kubernetes-models, @kubernetes-models/keda), the kustomizations' references, and the example overlay as rendered
 * (test/helpers/kustomize.ts; compared with `kubectl kustomize` where kubectl exists): each Deployment's environment
 * derived by loading its stage's configuration with it (as test/unit/docker-compose.test.ts does for compose), the
 * probes, grace periods, Dataverse budgets, KEDA triggers, dispatch's replicas against the senders, the Ingress.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import type { ChannelRegistry } from '../../../src/channels/index.js';
import type { LoadedConfig } from '../../../src/config/index.js';
import { packageRoot } from '../../../src/paths.js';
import { createProvider } from '../../../src/providers/index.js';
import { loadStageConfig, STAGE_NEEDS, STAGES, type StageName } from '../../../src/relay/index.js';
import { readKustomization, readManifests, renderKustomization, type KubeObject } from '../../helpers/kustomize.js';

const run = promisify(execFile);
const root = packageRoot();
const deployDir = path.join(root, 'deploy/kubernetes');
const baseDir = path.join(deployDir, 'base');
const overlayDir = path.join(deployDir, 'overlays/example');

/** The classes that validate each kind against its schema; a kind not listed here fails the test. */
const SCHEMAS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};
/**
 * The External Secrets Operator's kinds (the overlay's example) have no schema package here: their required fields
 * (https://external-secrets.io/latest/api/spec/) are checked by hand.
 */
const BY_HAND: Record<string, (o: KubeObject) => void> = {
  'external-secrets.io/v1/SecretStore': (o) => {
    const azure = (o['spec'] as { provider?: { azurekv?: Record<string, unknown> } }).provider?.azurekv;
    assert.ok(azure, `${o.metadata.name}: an azurekv provider`);
    assert.equal(azure['authType'], 'WorkloadIdentity', `${o.metadata.name}: workload identity, no client secret`);
    assert.match(String(azure['vaultUrl']), /^https:\/\/[a-z0-9-]+\.vault\.azure\.net\/?$/);
    assert.ok((azure['serviceAccountRef'] as { name?: string } | undefined)?.name, 'a serviceAccountRef');
  },
  'external-secrets.io/v1/ExternalSecret': (o) => {
    const spec = o['spec'] as {
      secretStoreRef?: { name?: string; kind?: string };
      target?: { name?: string };
      data?: Array<{ secretKey?: string; remoteRef?: { key?: string } }>;
    };
    assert.ok(spec.secretStoreRef?.name && spec.target?.name, `${o.metadata.name}: secretStoreRef and target.name`);
    assert.ok(spec.data && spec.data.length > 0, `${o.metadata.name}: data`);
    for (const d of spec.data)
      assert.ok(
        d.secretKey && /^[A-Za-z0-9-]{1,127}$/.test(d.remoteRef?.key ?? ''),
        `${o.metadata.name}: ${JSON.stringify(d)}`,
      );
  },
};

function validate(o: KubeObject, where: string): void {
  const id = `${o.apiVersion}/${o.kind}`;
  const byHand = BY_HAND[id];
  if (byHand) return byHand(o);
  const Model = SCHEMAS[id];
  assert.ok(Model, `${where}: ${id} (${o.metadata?.name}) is a kind this test knows a schema for`);
  assert.doesNotThrow(() => new Model(o as never).validate(), `${where}: ${id} ${o.metadata.name} is valid`);
}

/** Every kustomization folder under deploy/kubernetes. */
function kustomizations(dir = deployDir): string[] {
  const here = existsSync(path.join(dir, 'kustomization.yaml')) ? [dir] : [];
  return [
    ...here,
    ...readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .flatMap((e) => kustomizations(path.join(dir, e.name))),
  ];
}

/** Every YAML file under deploy/kubernetes. */
function yamlFiles(dir = deployDir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string }; emptyDir?: object }>;
}
type DeploymentObject = KubeObject & {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
};
type ScaledObjectObject = KubeObject & {
  spec: {
    scaleTargetRef: { name: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers: Array<{ type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }>;
  };
};

/** The example overlay as rendered (in a hook: a manifest that cannot be rendered fails a test, not the file). */
let rendered: KubeObject[] = [];
const find = <T extends KubeObject>(kind: string, name: string): T => {
  const o = rendered.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `the overlay renders ${kind} ${name}`);
  return o as T;
};
const deploymentOf = (stage: StageName): DeploymentObject =>
  find<DeploymentObject>('Deployment', `channel-relay-${stage}`);
const containerOf = (stage: StageName): Container => {
  const containers = deploymentOf(stage).spec.template.spec.containers;
  assert.equal(containers.length, 1, `${stage}: one container`);
  return containers[0]!;
};
const scaledObjectOf = (stage: StageName): ScaledObjectObject =>
  find<ScaledObjectObject>('ScaledObject', `channel-relay-${stage}`);

/** The keys of the Secrets the External Secrets Operator writes, by Secret name. */
let externalSecretKeys = new Map<string, Set<string>>();
/**
 * Stand-ins for the secrets in Key Vault, shaped as the loaders check them: a Twilio auth token, a Telegram bot token,
 * callback signing keys (id:base64 of 32 bytes). A secret the manifests reference that is missing here fails.
 */
const STAND_INS: Record<string, string> = {
  TWILIO_AUTH_TOKEN: '0123456789abcdef0123456789abcdef',
  TELEGRAM_BOT_TOKEN: `7000000001:${'A'.repeat(35)}`,
  CALLBACK_SIGNING_KEYS: `k8s-test:${Buffer.alloc(32, 7).toString('base64')}`,
};

/** Where the tests write the mounted ConfigMaps' files. */
let scratch = '';

/**
 * A stage's environment as its pod gets it: literal values, and each secretKeyRef resolved against the ExternalSecret
 * (its stand-in value). CHANNELS_FILE is mapped onto the ConfigMap's files written to a scratch folder, after checking
 * that it lies in a volume mounted from that ConfigMap.
 */
function environmentOf(stage: StageName): { env: Record<string, string>; secrets: string[]; cwd: string } {
  const c = containerOf(stage);
  const env: Record<string, string> = {};
  const secrets: string[] = [];
  for (const v of c.env ?? []) {
    assert.ok(!(v.name in env), `${stage}: ${v.name} is set once`);
    if (v.value !== undefined) {
      env[v.name] = v.value;
      continue;
    }
    const ref = v.valueFrom?.secretKeyRef;
    assert.ok(ref, `${stage}: ${v.name} is a value or a secretKeyRef`);
    assert.ok(
      externalSecretKeys.get(ref.name)?.has(ref.key),
      `${stage}: ${ref.name}/${ref.key} is written by an ExternalSecret`,
    );
    assert.ok(STAND_INS[ref.key], `${stage}: a stand-in for ${ref.key}`);
    env[v.name] = STAND_INS[ref.key]!;
    secrets.push(ref.key);
  }
  const cwd = path.join(scratch, stage);
  if (env['CHANNELS_FILE'] !== undefined) {
    const file = env['CHANNELS_FILE'];
    const mount = c.volumeMounts?.find((m) => path.posix.dirname(file) === m.mountPath);
    assert.ok(mount, `${stage}: CHANNELS_FILE ${file} lies in a mounted volume`);
    const volume = deploymentOf(stage).spec.template.spec.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume?.configMap, `${stage}: ${mount.mountPath} is mounted from a ConfigMap`);
    const data = find<KubeObject & { data: Record<string, string> }>('ConfigMap', volume.configMap.name).data;
    assert.ok(path.posix.basename(file) in data, `${stage}: the ConfigMap has ${path.posix.basename(file)}`);
    const local = path.join(cwd, 'mounted');
    mkdirSync(local, { recursive: true });
    for (const [name, text] of Object.entries(data)) writeFileSync(path.join(local, name), text);
    env['CHANNELS_FILE'] = path.join(local, path.posix.basename(file));
  }
  return { env, secrets: secrets.sort(), cwd };
}

/** Loads what a stage needs with `env` alone, and builds its providers, as a worker does at start. */
function load(
  stage: StageName,
  env: Record<string, string>,
  cwd: string,
): { loaded: LoadedConfig; channels?: ChannelRegistry } {
  const { loaded, channels } = loadStageConfig([stage], { env, cwd });
  for (const channel of channels?.all() ?? [])
    if (!('unread' in channel.provider)) createProvider(channel.provider, { timeoutMs: channel.timeoutMs });
  return { loaded, ...(channels ? { channels } : {}) };
}

const QUEUE_OF: Partial<Record<StageName, 'activities' | 'outbound' | 'interactions' | 'conversations'>> = {
  intake: 'activities',
  dispatch: 'outbound',
  recorder: 'interactions',
  conversations: 'conversations',
};

describe('deploy/kubernetes', () => {
  before(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'k8s-test-'));
    rendered = renderKustomization(overlayDir);
    externalSecretKeys = new Map(
      rendered
        .filter((o) => o.kind === 'ExternalSecret')
        .map((o) => {
          const spec = o['spec'] as { target: { name: string }; data: Array<{ secretKey: string }> };
          return [spec.target.name, new Set(spec.data.map((d) => d.secretKey))] as const;
        }),
    );
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('validates every manifest file against the Kubernetes and KEDA schemas (an unknown kind fails)', () => {
    const patches = new Set(
      kustomizations().flatMap((dir) => (readKustomization(dir).patches ?? []).map((p) => path.join(dir, p.path))),
    );
    let count = 0;
    for (const file of yamlFiles()) {
      if (path.basename(file) === 'kustomization.yaml' || patches.has(file)) continue;
      for (const o of readManifests(file)) {
        validate(o, path.relative(root, file));
        count++;
      }
    }
    assert.ok(count >= 20, `the manifests hold the stages' objects (found ${count})`);
  });

  it('validates the base and the example overlay as rendered, with nothing left for the overlay to set', () => {
    for (const o of renderKustomization(baseDir)) validate(o, 'base');
    for (const o of rendered) validate(o, 'overlays/example');
    const placeholders = rendered.filter((o) => JSON.stringify(o).includes('set-by-overlay'));
    assert.deepEqual(
      placeholders.map((o) => `${o.kind}/${o.metadata.name}`),
      [],
      'every placeholder of the base is replaced',
    );
    assert.ok(rendered.every((o) => o.metadata.namespace === readKustomization(overlayDir).namespace));
  });

  it("resolves every kustomization's resources, generator files and patches to files, and leaves no manifest out", () => {
    const referenced = new Set<string>();
    for (const dir of kustomizations()) {
      const k = readKustomization(dir);
      const files = [
        ...(k.resources ?? []),
        ...(k.patches ?? []).map((p) => p.path),
        ...(k.configMapGenerator ?? []).flatMap((g) => g.files ?? []),
      ];
      for (const f of files) {
        const target = path.join(dir, f);
        assert.ok(existsSync(target), `${path.relative(root, dir)}: ${f} exists`);
        referenced.add(target);
      }
    }
    // A kustomization.yaml is a root (an overlay) or referenced as its folder; every other YAML file must be used.
    const orphans = yamlFiles().filter((f) => !referenced.has(f) && path.basename(f) !== 'kustomization.yaml');
    assert.deepEqual(
      orphans.map((f) => path.relative(root, f)),
      [],
      'every YAML file is used by a kustomization',
    );
  });

  it("mounts the sample channel's generated tile: the example overlay's tile.xml is config/tiles/'s, byte for byte", () => {
    // config/tiles/ is what `channel new special --contract outbound-marketing --publisher-prefix sample` writes
    // (test/unit/solution/sample.test.ts): its LookupViewId is the generated view's id.
    const tile = 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml';
    assert.equal(
      readFileSync(path.join(overlayDir, 'tile.xml'), 'utf8'),
      readFileSync(path.join(root, 'config/tiles', tile), 'utf8'),
      `copy config/tiles/${tile} to deploy/kubernetes/overlays/example/tile.xml`,
    );
  });

  it('renders as `kubectl kustomize` does, where kubectl exists', async function () {
    this.timeout(30_000);
    let stdout: string;
    try {
      ({ stdout } = await run('kubectl', ['kustomize', overlayDir], { timeout: 20_000 }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      console.log('      skipped: there is no kubectl, so the rendering is not compared with kustomize');
      return this.skip();
    }
    const theirs = parseAllDocuments(stdout).map((d) => d.toJS() as KubeObject);
    // kustomize appends a hash of the content to generated names, and rewrites the references to them.
    const generated = (readKustomization(overlayDir).configMapGenerator ?? []).map((g) => g.name);
    const unhash = (text: string): string =>
      generated.reduce((t, name) => t.replace(new RegExp(`"${name}-[a-z0-9]{10}"`, 'g'), `"${name}"`), text);
    const byKey = (list: KubeObject[]): Record<string, KubeObject> =>
      Object.fromEntries(
        list
          .map((o) => JSON.parse(unhash(JSON.stringify(o))) as KubeObject)
          .map((o) => [`${o.kind}/${o.metadata.name}`, o]),
      );
    assert.deepEqual(byKey(rendered), byKey(theirs));
  });

  it('runs one Deployment per stage from the compiled workers/<stage>.ts, under its own ServiceAccount and Azure identity', () => {
    const clientIds = new Map<string, StageName>();
    for (const stage of STAGES) {
      const d = deploymentOf(stage);
      const c = containerOf(stage);
      assert.deepEqual(c.command, undefined, `${stage}: the image's entrypoint, as compose's command`);
      assert.deepEqual(c.args, ['node', `dist/workers/${stage}.js`]);
      assert.match(
        readFileSync(path.join(root, `workers/${stage}.ts`), 'utf8'),
        new RegExp(`runWorker\\(\\['${stage}'\\]\\)`),
        `workers/${stage}.ts runs the ${stage} stage alone`,
      );
      assert.equal(d.spec.replicas, undefined, `${stage}: no replicas: KEDA owns the count`);
      const labels = d.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(labels[k], v);
      assert.equal(labels['azure.workload.identity/use'], 'true', `${stage}: the workload identity label`);
      const sa = find<KubeObject>('ServiceAccount', d.spec.template.spec.serviceAccountName ?? '');
      const clientId = sa.metadata.annotations?.['azure.workload.identity/client-id'] ?? '';
      assert.match(clientId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${stage}: a client id`);
      assert.ok(!clientIds.has(clientId), `${stage} shares its identity with ${clientIds.get(clientId)}`);
      clientIds.set(clientId, stage);
    }
  });

  it("reads the provider secrets from Key Vault as an identity of their own, not one of the stages'", () => {
    const stageIds = new Set(
      STAGES.map(
        (s) =>
          find<KubeObject>('ServiceAccount', deploymentOf(s).spec.template.spec.serviceAccountName ?? '').metadata
            .annotations?.['azure.workload.identity/client-id'],
      ),
    );
    const stores = rendered.filter((o) => o.kind === 'SecretStore');
    assert.ok(stores.length > 0, 'a SecretStore');
    for (const store of stores) {
      const ref = (store['spec'] as { provider: { azurekv: { serviceAccountRef: { name: string } } } }).provider.azurekv
        .serviceAccountRef.name;
      const id = find<KubeObject>('ServiceAccount', ref).metadata.annotations?.['azure.workload.identity/client-id'];
      assert.match(id ?? '', /^[0-9a-f-]{36}$/, `${ref}: a client id`);
      assert.ok(!stageIds.has(id), `${ref}: not a stage's identity`);
    }
  });

  it('gives each Deployment exactly the environment its stage needs, derived by loading its configuration, channels and providers with only that environment', () => {
    const given: Record<string, string[]> = {};
    for (const stage of STAGES) {
      const { env, secrets, cwd } = environmentOf(stage);
      assert.doesNotThrow(() => load(stage, env, cwd), `${stage}: starts with its Deployment's environment alone`);
      const required = Object.keys(env).filter((k) => {
        const { [k]: _, ...without } = env;
        try {
          load(stage, without, cwd);
          return false;
        } catch {
          return true;
        }
      });
      assert.ok(required.includes('SERVICEBUS_NAMESPACE'), `${stage}: the Service Bus namespace is required`);
      for (const identitySecret of ['SERVICEBUS_CONNECTION_STRING', 'DATAVERSE_CLIENT_SECRET'])
        assert.ok(!(identitySecret in env), `${stage}: no ${identitySecret}: workload identity instead`);
      assert.equal(
        required.includes('DATAVERSE_URL'),
        STAGE_NEEDS[stage].dataverse,
        `${stage}: DATAVERSE_URL required exactly when the stage calls Dataverse`,
      );
      // Settings with a default, set for clarity: allowed only where the stage reads them.
      const settings = new Set([
        'LOG_LEVEL',
        'HEALTH_PORT',
        ...(STAGE_NEEDS[stage].channels ? ['CHANNELS_FILE'] : []),
        ...(STAGE_NEEDS[stage].dataverse
          ? ['DATAVERSE_AUTH', 'DATAVERSE_REQUEST_BUDGET', 'DATAVERSE_EXECUTION_BUDGET_MS', 'DATAVERSE_MAX_CONCURRENCY']
          : []),
      ]);
      const unused = Object.keys(env).filter((k) => !required.includes(k) && !settings.has(k));
      assert.deepEqual(unused, [], `${stage}: given but not used`);
      if (STAGE_NEEDS[stage].dataverse) assert.equal(env['DATAVERSE_AUTH'], 'default', 'DefaultAzureCredential');
      given[stage] = secrets;
    }
    // The example's channels: dispatch calls every provider and signs Twilio status callback URLs; the callbacks
    // service verifies Twilio's signatures (the one channel with callbacks) and its tokens; the conversations stage
    // reads every provider (attachments); intake none (the Telegram channel has a senderKey), the recorder none.
    assert.deepEqual(given, {
      intake: [],
      dispatch: ['CALLBACK_SIGNING_KEYS', 'TELEGRAM_BOT_TOKEN', 'TWILIO_AUTH_TOKEN'],
      recorder: [],
      callbacks: ['CALLBACK_SIGNING_KEYS', 'TWILIO_AUTH_TOKEN'],
      conversations: ['TELEGRAM_BOT_TOKEN', 'TWILIO_AUTH_TOKEN'],
    });
  });

  it('probes /readyz and /healthz on the health port, and waits on SIGTERM for the shutdown budget plus the provider timeout', () => {
    for (const stage of STAGES) {
      const { env, cwd } = environmentOf(stage);
      const { loaded, channels } = load(stage, env, cwd);
      const c = containerOf(stage);
      const portOf = (p: string | number): number =>
        typeof p === 'number' ? p : (c.ports?.find((x) => x.name === p)?.containerPort ?? NaN);
      assert.equal(c.readinessProbe?.httpGet.path, '/readyz');
      assert.equal(c.livenessProbe?.httpGet.path, '/healthz');
      assert.equal(
        portOf(c.readinessProbe.httpGet.port),
        loaded.config.health.port,
        `${stage}: readiness on the health port`,
      );
      assert.equal(
        portOf(c.livenessProbe.httpGet.port),
        loaded.config.health.port,
        `${stage}: liveness on the health port`,
      );
      // README, shutdown.budgetMs: the budget, then provider calls up to the slowest channel's timeoutMs + 2 s, + 5 s.
      const slowest = Math.max(0, ...(channels?.all() ?? []).map((ch) => ch.timeoutMs));
      const preStop = (c.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
      const needed = preStop + loaded.config.shutdown.budgetMs + (slowest > 0 ? slowest + 2000 : 0) + 5000;
      const grace = (deploymentOf(stage).spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
      assert.ok(grace >= needed, `${stage}: terminationGracePeriodSeconds ${grace / 1000} s >= ${needed / 1000} s`);
    }
  });

  it('runs non-root with a read-only root filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault, and resources set', () => {
    for (const stage of STAGES) {
      const pod = deploymentOf(stage).spec.template.spec;
      const c = containerOf(stage);
      assert.equal(pod.securityContext?.runAsNonRoot, true, stage);
      assert.equal(pod.securityContext?.runAsUser, 1000, `${stage}: the image's node user, numeric`);
      assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', stage);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, stage);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true, stage);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], stage);
      for (const r of ['cpu', 'memory']) assert.ok(c.resources?.requests?.[r], `${stage}: a ${r} request`);
      assert.ok(c.resources?.limits?.['memory'], `${stage}: a memory limit`);
      const pdb = rendered.filter(
        (o) =>
          o.kind === 'PodDisruptionBudget' &&
          JSON.stringify((o['spec'] as { selector: unknown }).selector) ===
            JSON.stringify({ matchLabels: deploymentOf(stage).spec.selector.matchLabels }),
      );
      assert.equal(pdb.length, 1, `${stage}: one PodDisruptionBudget selects its pods`);
    }
  });

  it("scales each queue-consuming stage on its queue with KEDA's azure-servicebus trigger and workload identity, within its identity's Dataverse budget", () => {
    const auth = find<KubeObject & { spec: { podIdentity: { provider: string; identityId?: string } } }>(
      'TriggerAuthentication',
      'channel-relay-servicebus',
    );
    assert.equal(auth.spec.podIdentity.provider, 'azure-workload');
    const schema = JSON.parse(readFileSync(path.join(root, 'config/schema.json'), 'utf8')) as {
      properties: { dataverse: { properties: Record<string, { maximum: number }> } };
    };
    const identityLimits = {
      requestBudget: schema.properties.dataverse.properties['requestBudget']!.maximum,
      executionBudgetMs: schema.properties.dataverse.properties['executionBudgetMs']!.maximum,
      maxConcurrency: schema.properties.dataverse.properties['maxConcurrency']!.maximum,
    };
    for (const stage of STAGES) {
      const so = scaledObjectOf(stage);
      assert.equal(so.spec.scaleTargetRef.name, deploymentOf(stage).metadata.name);
      const { env, cwd } = environmentOf(stage);
      const { loaded } = load(stage, env, cwd);
      const queue = QUEUE_OF[stage];
      const triggers = so.spec.triggers.filter((t) => t.type === 'azure-servicebus');
      if (queue) {
        assert.equal(triggers.length, 1, `${stage}: one azure-servicebus trigger`);
        const t = triggers[0]!;
        assert.equal(t.metadata['queueName'], loaded.config.serviceBus.queues[queue], `${stage}: its queue`);
        assert.equal(
          `${t.metadata['namespace']}.servicebus.windows.net`,
          loaded.config.serviceBus.namespace,
          `${stage}: the namespace the workers use`,
        );
        assert.match(t.metadata['messageCount'] ?? '', /^[1-9]\d*$/, `${stage}: messageCount`);
        assert.equal(t.authenticationRef?.name, auth.metadata.name);
      } else {
        assert.deepEqual(triggers, [], `${stage} consumes no queue`);
        assert.deepEqual(
          so.spec.triggers.map((t) => t.type),
          ['cpu'],
          `${stage}: scaled on CPU`,
        );
        assert.ok((so.spec.minReplicaCount ?? 0) >= 1, `${stage}: no scale to zero without an HTTP-aware scaler`);
      }
      const max = so.spec.maxReplicaCount ?? 100;
      assert.ok((so.spec.minReplicaCount ?? 0) <= max);
      // The replicas of a stage share its identity's budget: each takes its part, all of them within the limit.
      if (STAGE_NEEDS[stage].dataverse) {
        const dv = loaded.config.dataverse;
        assert.ok(
          max * dv.requestBudget <= identityLimits.requestBudget,
          `${stage}: ${max} x ${dv.requestBudget} requests`,
        );
        assert.ok(
          max * dv.executionBudgetMs <= identityLimits.executionBudgetMs,
          `${stage}: ${max} x ${dv.executionBudgetMs} ms of execution`,
        );
        assert.ok(
          max * dv.maxConcurrency <= identityLimits.maxConcurrency,
          `${stage}: ${max} x ${dv.maxConcurrency} calls in flight`,
        );
      }
    }
  });

  it("caps dispatch's replicas at the number of senders in the overlay's channels file", () => {
    const { env, cwd } = environmentOf('dispatch');
    const { channels } = load('dispatch', env, cwd);
    const senders = new Set(channels!.all().map((c) => c.senderKey));
    const so = scaledObjectOf('dispatch');
    assert.ok(so.spec.maxReplicaCount !== undefined, 'dispatch has a maxReplicaCount');
    assert.ok(
      so.spec.maxReplicaCount <= senders.size,
      `dispatch maxReplicaCount ${so.spec.maxReplicaCount} <= ${senders.size} senders (${[...senders].join(', ')})`,
    );
  });

  it("exposes the callbacks service's routes through a Service and a TLS Ingress with the service's own body limit", () => {
    const { env, cwd } = environmentOf('callbacks');
    const { loaded, channels } = load('callbacks', env, cwd);
    const c = containerOf('callbacks');
    const service = find<
      KubeObject & {
        spec: {
          selector: Record<string, string>;
          ports: Array<{ name: string; port: number; targetPort: string | number }>;
        };
      }
    >('Service', 'channel-relay-callbacks');
    for (const [k, v] of Object.entries(service.spec.selector))
      assert.equal(
        deploymentOf('callbacks').spec.template.metadata.labels[k],
        v,
        'the Service selects the callbacks pods',
      );
    const target = service.spec.ports[0]!.targetPort;
    assert.equal(
      typeof target === 'number' ? target : c.ports?.find((p) => p.name === target)?.containerPort,
      loaded.config.callbacks.port,
      "the Service's target is the callbacks port",
    );
    const ingress = find<
      KubeObject & {
        spec: {
          tls: Array<{ hosts: string[]; secretName: string }>;
          rules: Array<{
            host: string;
            http: {
              paths: Array<{
                path: string;
                pathType: string;
                backend: { service: { name: string; port: { name?: string } } };
              }>;
            };
          }>;
        };
      }
    >('Ingress', 'channel-relay-callbacks');
    const size = ingress.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size'] ?? '';
    const m = /^(\d+)([kKmM]?)$/.exec(size);
    assert.ok(m, `proxy-body-size ${size} in nginx's size syntax`);
    const bytes = Number(m[1]) * ({ '': 1, k: 1024, m: 1024 * 1024 } as Record<string, number>)[m[2]!.toLowerCase()]!;
    assert.equal(bytes, loaded.config.callbacks.bodyLimitBytes, 'the Ingress body limit is the service body limit');
    const rule = ingress.spec.rules[0]!;
    assert.ok(
      ingress.spec.tls.some((t) => t.hosts.includes(rule.host) && t.secretName),
      'TLS for the host',
    );
    assert.deepEqual(rule.http.paths.map((p) => p.path).sort(), ['/callbacks/', '/l/'], 'only the public routes');
    for (const p of rule.http.paths) {
      assert.equal(p.backend.service.name, service.metadata.name);
      assert.ok(service.spec.ports.some((sp) => sp.name === p.backend.service.port.name));
    }
    for (const ch of channels!.all().filter((x) => x.callbacks))
      assert.equal(
        new URL(ch.callbacks!.publicBaseUrl).host,
        rule.host,
        `${ch.name}: publicBaseUrl is the Ingress host`,
      );
  });
});
