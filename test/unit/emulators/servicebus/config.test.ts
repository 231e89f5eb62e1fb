import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configPath } from '../../../../src/paths.js';
import { isServiceBusEmulatorConfigError, loadEmulatorConfigFile, parseEmulatorConfig } from '../../../../src/emulators/servicebus/index.js';
import { formatIsoDuration, parseIsoDuration } from '../../../../src/duration.js';

function config(namespace: object): object {
  return { UserConfig: { Namespaces: [{ Name: 'sbemulatorns', ...namespace }], Logging: { Type: 'File' } } };
}

function issues(raw: unknown, strict = true): Array<{ path: string; reason: string }> {
  try {
    parseEmulatorConfig(raw, { strict });
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

  it("loads the relay's own config/servicebus-emulator.json: activities, outbound (sessions, duplicates), interactions (duplicates)", () => {
    const ns = loadEmulatorConfigFile(configPath('servicebus-emulator.json'));
    assert.equal(ns.name, 'sbemulatorns');
    const byName = Object.fromEntries(ns.queues.map((q) => [q.name, q]));
    assert.deepEqual(Object.keys(byName), ['activities', 'outbound', 'interactions']);
    assert.equal(byName['outbound']!.requiresSession, true);
    assert.equal(byName['outbound']!.requiresDuplicateDetection, true);
    assert.equal(byName['interactions']!.requiresDuplicateDetection, true);
    assert.equal(byName['interactions']!.requiresSession, false);
    assert.equal(byName['activities']!.requiresSession, false);
  });

  it("applies Microsoft's defaults", () => {
    const ns = parseEmulatorConfig(config({ Queues: [{ Name: 'q' }], Topics: [{ Name: 't', Subscriptions: [{ Name: 's' }] }] }));
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

  it('rejects values outside the documented ranges with the JSON path and the reason', () => {
    const found = issues(
      config({
        Queues: [
          { Name: 'q', Properties: { LockDuration: 'PT1S', MaxDeliveryCount: 11, DefaultMessageTimeToLive: 'PT2H', RequiresSession: 'yes', Colour: 'red' } },
        ],
      }),
    );
    const byPath = Object.fromEntries(found.map((i) => [i.path, i.reason]));
    const p = '$.UserConfig.Namespaces[0].Queues[0].Properties';
    assert.match(byPath[`${p}.LockDuration`]!, /from PT5S to PT5M, found PT1S/);
    assert.match(byPath[`${p}.MaxDeliveryCount`]!, /integer from 1 to 10, found 11/);
    assert.match(byPath[`${p}.DefaultMessageTimeToLive`]!, /found PT2H/);
    assert.match(byPath[`${p}.RequiresSession`]!, /expected true or false, found "yes"/);
    assert.match(byPath[`${p}.Colour`]!, /unknown property/);
    assert.equal(found.length, 5);
  });

  it('allows small durations in configuration given in code (relaxed), not in files', () => {
    const raw = config({ Queues: [{ Name: 'q', Properties: { LockDuration: 'PT0.1S', DefaultMessageTimeToLive: 'PT0.2S' } }] });
    assert.equal(parseEmulatorConfig(raw, { strict: false }).queues[0]!.lockDurationMs, 100);
    assert.equal(issues(raw, true).length, 2);
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
    assert.ok(paths.includes(`${t}[1].Subscriptions[0].Rules[2].Properties.CorrelationFilter`), 'empty correlation filter');
    assert.deepEqual(issues({ UserConfig: { Namespaces: [] } }).map((i) => i.path), ['$.UserConfig.Namespaces']);
    assert.deepEqual(issues([]).map((i) => i.path), ['$']);
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
                  { Name: 'r', Properties: { FilterType: 'Correlation', CorrelationFilter: { Label: 'sms', CorrelationId: '', Properties: { tier: 'gold', n: 2 } } } },
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
      assert.throws(() => loadEmulatorConfigFile(file), (err: unknown) => isServiceBusEmulatorConfigError(err) && err.source === file && /not valid JSON/.test(err.message));
      assert.throws(() => loadEmulatorConfigFile(path.join(dir, 'missing.json')), /cannot read the file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
