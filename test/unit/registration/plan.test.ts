import assert from 'node:assert/strict';
import {
  desiredEndpoint,
  desiredStep,
  matchingSteps,
  planEndpoint,
  planStep,
  stepBindings,
} from '../../../src/registration/plan.js';
import {
  formatRegistrationError,
  formatRegistrationReport,
  namespaceHost,
  serviceBusFromConnectionString,
  serviceBusFromEnv,
  type RegistrationReport,
} from '../../../src/registration/index.js';
import { solutionNamespace } from '../../../src/registration/assumptions.js';
import { DataverseError, isConfigError } from '../../../src/errors.js';

const BUS = { host: 'contoso.servicebus.windows.net', keyName: 'send', key: 'k3y-secret' };
const ENDPOINT_ID = '11111111-1111-4111-8111-111111111111';
const MESSAGE_ID = '22222222-2222-4222-8222-222222222222';
const FILTER_ID = '33333333-3333-4333-8333-333333333333';

function existingEndpoint(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    serviceendpointid: ENDPOINT_ID,
    ...desiredEndpoint('channel-relay activities', 'activities', BUS),
    issaskeyset: true,
    ...overrides,
  };
}

describe('registration plan', () => {
  describe('the service endpoint', () => {
    it('wants contract Queue, JSON, SAS key, the namespace address and the namespace name', () => {
      assert.deepEqual(desiredEndpoint('n', 'activities', BUS), {
        name: 'n',
        contract: 2,
        messageformat: 2,
        authtype: 2,
        userclaim: 1,
        connectionmode: 1,
        namespaceformat: 2,
        namespaceaddress: 'sb://contoso.servicebus.windows.net/',
        solutionnamespace: 'contoso',
        path: 'activities',
        saskeyname: 'send',
      });
    });

    const cases: Array<{
      title: string;
      existing: Record<string, unknown> | undefined;
      updateKey?: boolean;
      action: string;
      changed: string[];
    }> = [
      {
        title: 'missing: create with the key',
        existing: undefined,
        action: 'create',
        changed: [...Object.keys(desiredEndpoint('n', 'q', BUS)), 'saskey'],
      },
      { title: 'identical, key set: unchanged', existing: existingEndpoint(), action: 'unchanged', changed: [] },
      {
        title: 'host in another case: unchanged',
        existing: existingEndpoint({ namespaceaddress: 'sb://CONTOSO.servicebus.windows.net/' }),
        action: 'unchanged',
        changed: [],
      },
      {
        title: 'another queue: path only',
        existing: existingEndpoint({ path: 'old' }),
        action: 'update',
        changed: ['path'],
      },
      {
        title: 'another namespace: the key follows',
        existing: existingEndpoint({ namespaceaddress: 'sb://old.servicebus.windows.net/', solutionnamespace: 'old' }),
        action: 'update',
        changed: ['namespaceaddress', 'solutionnamespace', 'saskey'],
      },
      {
        title: 'another key name: the key follows',
        existing: existingEndpoint({ saskeyname: 'RootManageSharedAccessKey' }),
        action: 'update',
        changed: ['saskeyname', 'saskey'],
      },
      {
        title: 'no key set: the key',
        existing: existingEndpoint({ issaskeyset: false }),
        action: 'update',
        changed: ['saskey'],
      },
      {
        title: 'issaskeyset not readable: the key',
        existing: existingEndpoint({ issaskeyset: undefined }),
        action: 'update',
        changed: ['saskey'],
      },
      {
        title: 'rotation asked: the key',
        existing: existingEndpoint(),
        updateKey: true,
        action: 'update',
        changed: ['saskey'],
      },
      {
        title: 'format Binary XML: messageformat',
        existing: existingEndpoint({ messageformat: 1 }),
        action: 'update',
        changed: ['messageformat'],
      },
    ];
    for (const c of cases) {
      it(c.title, () => {
        const desired = desiredEndpoint(
          c.existing === undefined ? 'n' : 'channel-relay activities',
          c.existing === undefined ? 'q' : 'activities',
          BUS,
        );
        const plan = planEndpoint(c.existing, desired, BUS.key, c.updateKey);
        assert.equal(plan.action, c.action);
        assert.deepEqual(plan.changed, c.changed);
        assert.deepEqual(Object.keys(plan.body), c.changed);
        if (c.changed.includes('saskey')) assert.equal(plan.body['saskey'], BUS.key);
      });
    }
  });

  describe('steps', () => {
    const step = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
      sdkmessageprocessingstepid: 'step-1',
      ...desiredStep('channel-relay: Create'),
      statecode: 0,
      _sdkmessageid_value: MESSAGE_ID,
      _sdkmessagefilterid_value: FILTER_ID,
      ...overrides,
    });

    it('creates with the bindings', () => {
      const plan = planStep(undefined, desiredStep('s'), stepBindings(ENDPOINT_ID, MESSAGE_ID, FILTER_ID));
      assert.equal(plan.action, 'create');
      assert.deepEqual(plan.body, {
        name: 's',
        mode: 1,
        stage: 40,
        rank: 1,
        supporteddeployment: 0,
        asyncautodelete: true,
        'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${ENDPOINT_ID})`,
        'sdkmessageid@odata.bind': `/sdkmessages(${MESSAGE_ID})`,
        'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${FILTER_ID})`,
      });
    });

    it('binds no filter for an unbound message without one', () => {
      assert.deepEqual(Object.keys(stepBindings(ENDPOINT_ID, MESSAGE_ID, undefined)), [
        'eventhandler_serviceendpoint@odata.bind',
        'sdkmessageid@odata.bind',
      ]);
    });

    it('unchanged when equal; PATCHes only what differs; enables a disabled step with its statuscode', () => {
      assert.equal(planStep(step(), desiredStep('channel-relay: Create'), {}).action, 'unchanged');
      const plan = planStep(step({ rank: 4, statecode: 1, statuscode: 2 }), desiredStep('channel-relay: Create'), {});
      assert.equal(plan.action, 'update');
      assert.deepEqual(plan.changed, ['rank', 'statecode']);
      assert.deepEqual(plan.body, { rank: 1, statecode: 0, statuscode: 1 });
      assert.deepEqual(planStep(step({ mode: 0, stage: 20 }), desiredStep('channel-relay: Create'), {}).changed, [
        'mode',
        'stage',
      ]);
    });

    it('identity: endpoint (queried), message and filter, not the name; oldest first', () => {
      const steps = [
        step({ sdkmessageprocessingstepid: 'b', name: 'other', createdon: '2026-02-01T00:00:00Z' }),
        step({
          sdkmessageprocessingstepid: 'a',
          createdon: '2026-01-01T00:00:00Z',
          _sdkmessageid_value: MESSAGE_ID.toUpperCase(),
        }),
        step({ sdkmessageprocessingstepid: 'c', _sdkmessagefilterid_value: null }),
        step({ sdkmessageprocessingstepid: 'd', _sdkmessageid_value: ENDPOINT_ID }),
      ];
      assert.deepEqual(
        matchingSteps(steps, MESSAGE_ID, FILTER_ID).map((s) => s['sdkmessageprocessingstepid']),
        ['a', 'b'],
      );
      assert.deepEqual(
        matchingSteps(steps, MESSAGE_ID, undefined).map((s) => s['sdkmessageprocessingstepid']),
        ['c'],
      );
    });
  });

  describe('the Service Bus connection', () => {
    it('reads a connection string (the emulator form too) without keeping anything else', () => {
      assert.deepEqual(
        serviceBusFromConnectionString(
          'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc==',
        ),
        { host: 'contoso.servicebus.windows.net', keyName: 'send', key: 'abc==' },
      );
      // A host without a dot in an Endpoint (a Compose service name) is kept as given, never turned into an Azure namespace.
      assert.equal(
        serviceBusFromConnectionString(
          'Endpoint=sb://servicebus-emulator;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;',
        ).host,
        'servicebus-emulator',
      );
      assert.deepEqual(
        serviceBusFromConnectionString(
          'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;',
        ),
        {
          host: '127.0.0.1:5672',
          keyName: 'RootManageSharedAccessKey',
          key: 'SAS_KEY_VALUE',
        },
      );
    });

    it('refuses a connection string without a key, never echoing it', () => {
      assert.throws(
        () =>
          serviceBusFromConnectionString(
            'Endpoint=sb://x.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=SECRET',
          ),
        (err: Error) => {
          assert.match(
            err.message,
            /SharedAccessKeyName=…, SharedAccessKey=… \(a SharedAccessSignature cannot be used/,
          );
          assert.doesNotMatch(err.message, /SECRET/);
          return true;
        },
      );
    });

    it('reads the environment as the workers do; names every missing variable', () => {
      assert.deepEqual(
        serviceBusFromEnv({
          SERVICEBUS_NAMESPACE: 'contoso',
          SERVICEBUS_SAS_KEY_NAME: 'send',
          SERVICEBUS_SAS_KEY: 'k',
        }),
        { host: 'contoso.servicebus.windows.net', keyName: 'send', key: 'k' },
      );
      assert.throws(
        () => serviceBusFromEnv({ SERVICEBUS_NAMESPACE: 'contoso.servicebus.windows.net' }),
        (err: unknown) =>
          isConfigError(err) &&
          err.problems.map((p) => p.source).join() ===
            'environment variable SERVICEBUS_SAS_KEY_NAME,environment variable SERVICEBUS_SAS_KEY',
      );
      assert.throws(
        () => serviceBusFromEnv({}),
        (err: unknown) => isConfigError(err) && /neither set/.test(err.message),
      );
    });

    it('namespace host and name', () => {
      assert.equal(namespaceHost('sb://contoso.servicebus.windows.net/'), 'contoso.servicebus.windows.net');
      assert.equal(namespaceHost('contoso'), 'contoso.servicebus.windows.net');
      assert.equal(namespaceHost('localhost:5672'), 'localhost:5672');
      assert.equal(solutionNamespace('contoso.servicebus.windows.net'), 'contoso');
      assert.equal(solutionNamespace('127.0.0.1:5672'), 'sbemulatorns');
      assert.equal(solutionNamespace('localhost'), 'sbemulatorns');
    });
  });

  describe('report', () => {
    const report = (over: Partial<RegistrationReport>): RegistrationReport => ({
      dryRun: false,
      items: [],
      changed: false,
      warnings: [],
      requests: { reads: 4, writes: 0 },
      ...over,
    });
    it('one line per row with the column names, then a summary', () => {
      const text = formatRegistrationReport(
        report({
          changed: true,
          requests: { reads: 4, writes: 2 },
          items: [
            {
              kind: 'serviceendpoint',
              name: 'e',
              target: 'queue activities at sb://x/',
              action: 'update',
              changed: ['path', 'saskey'],
              id: 'id-1',
            },
            { kind: 'step', name: 's', target: 'Create of t', action: 'unchanged', changed: [], id: 'id-2' },
          ],
          warnings: ['w'],
        }),
      );
      assert.equal(
        text,
        [
          "serviceendpoint 'e' (queue activities at sb://x/) [id-1]: updated: path, saskey",
          "step 's' (Create of t) [id-2]: unchanged",
          'warning: w',
          'created 0, updated 1, unchanged 1 (4 reads, 2 writes)',
        ].join('\n'),
      );
    });

    it('an error: code, status, Dataverse code and message, then the hint', () => {
      const err = new DataverseError(
        'DataverseUnauthorized',
        'Dataverse (x) answered 403 0x80040220: Principal user is missing prvCreateServiceEndpoint',
        {
          upstream: { status: 403, code: '0x80040220' },
          context: { hint: 'give it a role' },
        },
      );
      assert.equal(
        formatRegistrationError(err),
        'Dataverse error DataverseUnauthorized (HTTP 403 0x80040220): Dataverse (x) answered 403 0x80040220: Principal user is missing prvCreateServiceEndpoint\ncheck: give it a role',
      );
    });
  });
});
