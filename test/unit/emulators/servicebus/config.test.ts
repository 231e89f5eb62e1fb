import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configPath } from '../../../../src/paths.js';
import {
  isServiceBusEmulatorConfigError,
  loadEmulatorConfigFile,
  parseEmulatorConfig,
  type ConfigRanges,
} from '../../../../src/emulators/servicebus/index.js';
import { formatIsoDuration, parseIsoDuration } from '../../../../src/duration.js';

function config(namespace: object): object {
  return { UserConfig: { Namespaces: [{ Name: 'sbemulatorns', ...namespace }], Logging: { Type: 'File' } } };
}

function issues(raw: unknown, strict = true, ranges: ConfigRanges = 'azure'): Array<{ path: string; reason: string }> {
  try {
    parseEmulatorConfig(raw, { strict, ranges });
  } catch (err) {
    assert.ok(isServiceBusEmulatorConfigError(err));
    return err.issues.map((i) => ({ ...i }));
  }
  return [];
}

describe('Service Bus emulator configuration (Microsoft Config.json)', () => {
  it('reads ISO 8601 durations', () => {
    const cases: Array<[string, number | undefined]> = [
      ['PT1M', 60_000],
      ['PT20S', 20_000],
      ['PT1H', 3_600_000],
      ['P1D', 86_400_000],
      ['P1DT2H', 93_600_000],
      ['PT0.25S', 250],
      ['PT1M30S', 90_000],
      ['P', undefined],
      ['PT', undefined],
      ['1 minute', undefined],
      ['', undefined],
    ];
    for (const [text, ms] of cases) assert.equal(parseIsoDuration(text), ms, text);
    assert.equal(formatIsoDuration(90_000), 'PT1M30S');
    assert.equal(formatIsoDuration(5_000), 'PT5S');
  });

  it("loads the relay's own config/servicebus-emulator.json: activities, outbound (sessions, duplicates), interactions (duplicates), conversations (sessions, duplicates)", () => {
    const ns = loadEmulatorConfigFile(configPath('servicebus-emulator.json'));
    assert.equal(ns.name, 'sbemulatorns');
    const byName = Object.fromEntries(ns.queues.map((q) => [q.name, q]));
    assert.deepEqual(Object.keys(byName), ['activities', 'outbound', 'interactions', 'conversations']);
    assert.equal(byName['conversations']!.requiresSession, true);
    assert.equal(byName['conversations']!.requiresDuplicateDetection, true);
    assert.equal(byName['conversations']!.maxDeliveryCount, 10);
    assert.equal(byName['outbound']!.requiresSession, true);
    assert.equal(byName['outbound']!.requiresDuplicateDetection, true);
    assert.equal(byName['interactions']!.requiresDuplicateDetection, true);
    assert.equal(byName['interactions']!.requiresSession, false);
    assert.equal(byName['activities']!.requiresSession, false);
  });

  it("applies Microsoft's defaults", () => {
    const ns = parseEmulatorConfig(
      config({ Queues: [{ Name: 'q' }], Topics: [{ Name: 't', Subscriptions: [{ Name: 's' }] }] }),
    );
    assert.deepEqual(ns.queues[0], {
      name: 'q',
      lockDurationMs: 60_000,
      maxDeliveryCount: 3,
      defaultTtlMs: 3_600_000,
      deadLetterOnExpiration: false,
      requiresSession: false,
      requiresDuplicateDetection: false,
      duplicateWindowMs: 20_000,
    });
    assert.deepEqual(ns.topics[0]!.subscriptions[0]!.rules, []);
    assert.equal(ns.topics[0]!.subscriptions[0]!.lockDurationMs, 60_000);
  });

  it("rejects values outside Microsoft's emulator's ranges with the JSON path, the range and the set", () => {
    const found = issues(
      config({
        Queues: [
          {
            Name: 'q',
            Properties: {
              LockDuration: 'PT1S',
              MaxDeliveryCount: 11,
              DefaultMessageTimeToLive: 'PT2H',
              RequiresSession: 'yes',
              Colour: 'red',
            },
          },
        ],
      }),
      true,
      'microsoft-emulator',
    );
    const byPath = Object.fromEntries(found.map((i) => [i.path, i.reason]));
    const p = '$.UserConfig.Namespaces[0].Queues[0].Properties';
    const set = /\(Microsoft's Service Bus emulator's range \(its Config-schema\.json\)\)/.source;
    assert.match(byPath[`${p}.LockDuration`]!, new RegExp(`from PT5S to PT5M ${set}, found PT1S`));
    assert.match(byPath[`${p}.MaxDeliveryCount`]!, new RegExp(`integer from 1 to 10 ${set}, found 11`));
    assert.match(byPath[`${p}.DefaultMessageTimeToLive`]!, new RegExp(`from PT5M to PT1H ${set}, found PT2H`));
    assert.match(byPath[`${p}.RequiresSession`]!, /expected true or false, found "yes"/);
    assert.match(byPath[`${p}.Colour`]!, /unknown property/);
    assert.equal(found.length, 5);
  });

  describe("ranges: Azure Service Bus's (default) and Microsoft's emulator's", () => {
    const p = '$.UserConfig.Namespaces[0].Queues[0].Properties';
    const s = '$.UserConfig.Namespaces[0].Topics[0].Subscriptions[0].Properties';
    const queue = (props: object) => config({ Queues: [{ Name: 'q', Properties: props }] });
    const subscription = (props: object) =>
      config({ Topics: [{ Name: 't', Subscriptions: [{ Name: 's', Properties: props }] }] });
    /** [what, file, path, Azure's verdict (undefined: accepted), Microsoft's emulator's verdict]. */
    const cases: Array<[string, object, string, RegExp | undefined, RegExp | undefined]> = [
      [
        'duplicate window PT10M',
        queue({ DuplicateDetectionHistoryTimeWindow: 'PT10M' }),
        `${p}.DuplicateDetectionHistoryTimeWindow`,
        undefined,
        /from PT5S to PT5M \(Microsoft's .*\), found PT10M/,
      ],
      [
        'duplicate window PT5S',
        queue({ DuplicateDetectionHistoryTimeWindow: 'PT5S' }),
        `${p}.DuplicateDetectionHistoryTimeWindow`,
        /from PT20S to PT168H \(Azure Service Bus's range\), found PT5S/,
        undefined,
      ],
      [
        'duplicate window P8D',
        queue({ DuplicateDetectionHistoryTimeWindow: 'P8D' }),
        `${p}.DuplicateDetectionHistoryTimeWindow`,
        /from PT20S to PT168H \(Azure/,
        /from PT5S to PT5M \(Microsoft's/,
      ],
      [
        'queue lock PT4S',
        queue({ LockDuration: 'PT4S' }),
        `${p}.LockDuration`,
        /from PT5S to PT5M \(Azure/,
        /from PT5S to PT5M \(Microsoft's/,
      ],
      ['queue lock PT30S', queue({ LockDuration: 'PT30S' }), `${p}.LockDuration`, undefined, undefined],
      [
        'subscription lock PT30S',
        subscription({ LockDuration: 'PT30S' }),
        `${s}.LockDuration`,
        undefined,
        /from PT1M to PT5M \(Microsoft's/,
      ],
      [
        'subscription lock PT6M',
        subscription({ LockDuration: 'PT6M' }),
        `${s}.LockDuration`,
        /from PT5S to PT5M \(Azure/,
        /from PT1M to PT5M \(Microsoft's/,
      ],
      [
        'TTL P14D',
        queue({ DefaultMessageTimeToLive: 'P14D' }),
        `${p}.DefaultMessageTimeToLive`,
        undefined,
        /from PT5M to PT1H \(Microsoft's/,
      ],
      [
        'TTL PT2S',
        queue({ DefaultMessageTimeToLive: 'PT2S' }),
        `${p}.DefaultMessageTimeToLive`,
        undefined,
        /from PT5M to PT1H/,
      ],
      [
        'TTL PT0.5S',
        queue({ DefaultMessageTimeToLive: 'PT0.5S' }),
        `${p}.DefaultMessageTimeToLive`,
        /from PT1S to .* \(Azure Service Bus's range\), found PT0\.5S/,
        /from PT5M to PT1H/,
      ],
      [
        'MaxDeliveryCount 2000',
        queue({ MaxDeliveryCount: 2000 }),
        `${p}.MaxDeliveryCount`,
        undefined,
        /integer from 1 to 10 \(Microsoft's/,
      ],
      [
        'MaxDeliveryCount 0',
        queue({ MaxDeliveryCount: 0 }),
        `${p}.MaxDeliveryCount`,
        /integer from 1 to 2147483647 \(Azure/,
        /integer from 1 to 10/,
      ],
    ];
    for (const [what, raw, at, azure, microsoft] of cases) {
      it(`${what}: Azure ${azure ? 'refuses' : 'accepts'}, Microsoft's emulator ${microsoft ? 'refuses' : 'accepts'}`, () => {
        for (const [ranges, verdict] of [
          ['azure', azure],
          ['microsoft-emulator', microsoft],
        ] as const) {
          const found = issues(raw, true, ranges);
          if (verdict === undefined) assert.deepEqual(found, [], ranges);
          else {
            assert.deepEqual(
              found.map((i) => i.path),
              [at],
              ranges,
            );
            assert.match(found[0]!.reason, verdict, ranges);
          }
        }
      });
    }

    it("Microsoft's emulator also fixes the namespace name and counts entities; Azure's set does not", () => {
      const named = { UserConfig: { Namespaces: [{ Name: 'relay', Queues: [{ Name: 'q' }] }] } };
      assert.deepEqual(issues(named, true, 'azure'), []);
      assert.deepEqual(issues(named, true, 'microsoft-emulator'), [
        {
          path: '$.UserConfig.Namespaces[0].Name',
          reason: `expected "sbemulatorns" (Microsoft's Service Bus emulator's range (its Config-schema.json)), found "relay"`,
        },
      ]);
      const many = config({ Queues: Array.from({ length: 51 }, (_, i) => ({ Name: `q${i}` })) });
      assert.deepEqual(issues(many, true, 'azure'), []);
      assert.deepEqual(
        issues(many, true, 'microsoft-emulator').map((i) => i.reason),
        [
          `expected at most 50 queues and topics together (Microsoft's Service Bus emulator's range (its Config-schema.json)), found 51`,
        ],
      );
    });

    it('a file: the error names the file, the key, the range and the set; --ranges picks the set', () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-ranges-'));
      try {
        const file = path.join(dir, 'Config.json');
        writeFileSync(file, JSON.stringify(queue({ DuplicateDetectionHistoryTimeWindow: 'PT10M' })));
        assert.equal(loadEmulatorConfigFile(file).queues[0]!.duplicateWindowMs, 600_000, "Azure's ranges by default");
        assert.throws(
          () => loadEmulatorConfigFile(file, 'microsoft-emulator'),
          (err: unknown) =>
            isServiceBusEmulatorConfigError(err) &&
            err.source === file &&
            err.message.includes(`${file}: Service Bus emulator configuration has 1 problem`) &&
            err.message.includes(
              `${p}.DuplicateDetectionHistoryTimeWindow: expected a duration from PT5S to PT5M (Microsoft's Service Bus emulator's range (its Config-schema.json)), found PT10M`,
            ),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("the project's config/servicebus-emulator.json keeps Azure's ranges (a PT10M window); compose's file keeps Microsoft's emulator's", () => {
      assert.doesNotThrow(() => loadEmulatorConfigFile(configPath('servicebus-emulator.json'), 'azure'));
      assert.throws(
        () => loadEmulatorConfigFile(configPath('servicebus-emulator.json'), 'microsoft-emulator'),
        /DuplicateDetectionHistoryTimeWindow: expected a duration from PT5S to PT5M/,
      );
      assert.doesNotThrow(() =>
        loadEmulatorConfigFile(configPath('compose', 'servicebus-emulator.json'), 'microsoft-emulator'),
      );
    });
  });

  it('allows small durations in configuration given in code (relaxed), not in files', () => {
    const raw = config({
      Queues: [{ Name: 'q', Properties: { LockDuration: 'PT0.1S', DefaultMessageTimeToLive: 'PT0.2S' } }],
    });
    assert.equal(parseEmulatorConfig(raw, { strict: false }).queues[0]!.lockDurationMs, 100);
    assert.equal(issues(raw, true, 'azure').length, 2);
    assert.equal(issues(raw, true, 'microsoft-emulator').length, 2);
  });

  it('rejects structural problems: names, duplicates, namespaces, rules, forwarding', () => {
    const found = issues(
      config({
        Queues: [{ Name: 'same' }, { Name: 'SAME' }, { Name: '' }, { Name: 'f', Properties: { ForwardTo: 'other' } }],
        Topics: [
          { Name: 't', Subscriptions: [] },
          {
            Name: 't2',
            Subscriptions: [
              {
                Name: 's',
                Rules: [
                  { Name: 'sql', Properties: { FilterType: 'Sql', SqlFilter: { SqlExpression: "color = 'red'" } } },
                  { Name: 'bad', Properties: { FilterType: 'Magic' } },
                  { Name: 'empty', Properties: { FilterType: 'Correlation', CorrelationFilter: {} } },
                ],
              },
            ],
          },
        ],
      }),
    );
    const paths = found.map((i) => i.path);
    const q = '$.UserConfig.Namespaces[0].Queues';
    const t = '$.UserConfig.Namespaces[0].Topics';
    assert.ok(paths.includes(`${q}[1].Name`), 'case-insensitive duplicate');
    assert.ok(paths.includes(`${q}[2].Name`), 'empty name');
    assert.ok(paths.includes(`${q}[3].Properties.ForwardTo`), 'forwarding');
    assert.ok(paths.includes(`${t}[0].Subscriptions`), 'a topic needs a subscription');
    assert.ok(paths.includes(`${t}[1].Subscriptions[0].Rules[0].Properties.SqlFilter.SqlExpression`), 'SQL filter');
    assert.ok(paths.includes(`${t}[1].Subscriptions[0].Rules[1].Properties.FilterType`), 'filter type');
    assert.ok(
      paths.includes(`${t}[1].Subscriptions[0].Rules[2].Properties.CorrelationFilter`),
      'empty correlation filter',
    );
    assert.deepEqual(
      issues({ UserConfig: { Namespaces: [] } }).map((i) => i.path),
      ['$.UserConfig.Namespaces'],
    );
    assert.deepEqual(
      issues([]).map((i) => i.path),
      ['$'],
    );
  });

  it('reads correlation filters, with Label as the subject and user properties', () => {
    const ns = parseEmulatorConfig(
      config({
        Topics: [
          {
            Name: 't',
            Subscriptions: [
              {
                Name: 's',
                Rules: [
                  {
                    Name: 'r',
                    Properties: {
                      FilterType: 'Correlation',
                      CorrelationFilter: { Label: 'sms', CorrelationId: '', Properties: { tier: 'gold', n: 2 } },
                    },
                  },
                  { Name: 'all', Properties: { FilterType: 'Sql', SqlFilter: { SqlExpression: '1=1' } } },
                ],
              },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(ns.topics[0]!.subscriptions[0]!.rules, [
      { name: 'r', filter: { subject: 'sms', properties: { tier: 'gold', n: 2 } } },
      { name: 'all' },
    ]);
  });

  it('reports an unreadable or non-JSON file with its path', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-config-'));
    try {
      const file = path.join(dir, 'Config.json');
      writeFileSync(file, '{ not json');
      assert.throws(
        () => loadEmulatorConfigFile(file),
        (err: unknown) =>
          isServiceBusEmulatorConfigError(err) && err.source === file && /not valid JSON/.test(err.message),
      );
      assert.throws(() => loadEmulatorConfigFile(path.join(dir, 'missing.json')), /cannot read the file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
