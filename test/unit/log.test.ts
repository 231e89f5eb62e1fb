import assert from 'node:assert/strict';
import { createLogger, areaLogger, maskDigits, redact, REDACTED } from '../../src/log.js';
import { ProviderError } from '../../src/errors.js';
import { CaptureStream } from '../helpers/capture.js';

const SECRETS = {
  connectionString:
    'Endpoint=sb://relay.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==',
  sas: 'SharedAccessSignature sr=sb%3A%2F%2Frelay&sig=AbCdEf0123456789%2BsigValue%3D&se=1700000000&skn=send',
  bearer: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl',
  telegram: '123456789:AAHk3_QwErTyUiOpAsDfGhJkLzXcVbNm12345',
  twilioToken: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
};
const PHONE = '+4915112345678';
const EMAIL = 'jane.doe@contoso.com';

describe('logging', () => {
  const capture = (): { stream: CaptureStream; log: ReturnType<typeof createLogger> } => {
    const stream = new CaptureStream();
    return { stream, log: createLogger({ stream, level: 'debug' }) };
  };

  it('writes JSON lines with the area and correlation fields of child loggers', () => {
    const { stream, log } = capture();
    areaLogger(log, 'dispatch', { activityId: 'a-1' }).info('sent', { correlationId: 'c-9', durationMs: 12 });
    const [line] = stream.lines();
    assert.equal(line?.['level'], 'info');
    assert.equal(line?.['message'], 'sent');
    assert.equal(line?.['area'], 'dispatch');
    assert.equal(line?.['activityId'], 'a-1');
    assert.equal(line?.['correlationId'], 'c-9');
    assert.equal(line?.['durationMs'], 12);
    assert.match(String(line?.['timestamp']), /^\d{4}-\d\d-\d\dT/);
  });

  it('writes readable lines on a TTY', () => {
    const stream = new CaptureStream();
    stream.isTTY = true;
    createLogger({ stream }).warn('slow sender', { area: 'dispatch', sender: 'twilio-main' });
    assert.match(stream.text, /^\d\d:\d\d:\d\d\.\d{3} .*warn.* \[dispatch\] slow sender sender=twilio-main\n$/);
  });

  it('never lets a secret reach a line, whether in a field, a message or an error', () => {
    const { stream, log } = capture();
    log.info(`connecting with ${SECRETS.connectionString}`);
    log.info('token exchange', { authorization: SECRETS.bearer, sasToken: SECRETS.sas, password: 'p@ss', apiKey: 42 });
    log.info('header dump', { headers: { Authorization: SECRETS.bearer, 'x-custom': SECRETS.sas } });
    log.warn(`telegram call to https://api.telegram.org/bot${SECRETS.telegram}/sendMessage failed`);
    log.error('provider failed', {
      err: new ProviderError('ProviderUnauthorized', `refused ${SECRETS.bearer}`, {
        upstream: { status: 401, headers: { authorization: SECRETS.bearer } },
      }),
    });
    log.info('twilio', { credentials: { accountSid: 'AC123', authToken: SECRETS.twilioToken } });
    const text = stream.text;
    for (const [name, secret] of Object.entries(SECRETS)) {
      const core =
        name === 'connectionString'
          ? 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA'
          : name === 'sas'
            ? 'AbCdEf0123456789'
            : name === 'bearer'
              ? 'eyJzdWIiOiIxMjM0NSJ9'
              : secret;
      assert.ok(!text.includes(core), `${name} leaked: ${text}`);
    }
    assert.ok(!text.includes('p@ss'));
    assert.ok(text.includes(REDACTED));
    assert.match(text, /SharedAccessKeyName=RootManageSharedAccessKey/, 'the key name stays readable');
    assert.equal(stream.lines().length, 6);
  });

  it('masks phone numbers and e-mail addresses, keeping enough to tell them apart', () => {
    const { stream, log } = capture();
    log.info(`sending to ${PHONE} and ${EMAIL}`);
    log.info('recipient', {
      to: PHONE,
      from: '+1 (555) 010-9999',
      email: EMAIL,
      chatId: 987654321,
      mobilephone: '015112345678',
    });
    const text = stream.text;
    assert.ok(!text.includes('15112345678') && !text.includes('5550109999') && !text.includes('987654321'), text);
    assert.ok(!text.includes('jane.doe'), text);
    const [first, second] = stream.lines();
    assert.equal(first?.['message'], 'sending to +*********5678 and j***@contoso.com');
    assert.equal(second?.['to'], '+*********5678');
    assert.equal(second?.['from'], '+*******9999');
    assert.equal(second?.['email'], 'j***@contoso.com');
    assert.equal(second?.['chatId'], '*****4321');
    assert.equal(second?.['mobilephone'], '********5678');
  });

  it('keeps ordinary numbers, ids and timestamps intact', () => {
    const value = {
      sequenceNumber: 123456789012,
      activityId: '3f2a5c1e-0000-4000-8000-000000000001',
      at: '2026-11-21T23:00:00.000Z',
      code: '0x80072322',
    };
    assert.deepEqual(redact(value), value);
    assert.equal(redact('retry in 1200 ms after status 429'), 'retry in 1200 ms after status 429');
  });

  it('survives cycles and deep objects', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a['self'] = a;
    assert.deepEqual(redact(a), { name: 'a', self: '[circular]' });
    assert.equal(maskDigits('12'), '**');
  });

  it('drops lines below the level', () => {
    const stream = new CaptureStream();
    const log = createLogger({ stream, level: 'warn' });
    log.info('quiet');
    log.debug('quieter');
    log.warn('loud');
    assert.deepEqual(
      stream.lines().map((l) => l['message']),
      ['loud'],
    );
  });

  it('does no work for lines below the level (no redaction, no serialisation), a child logger’s or after a level change alike', () => {
    const stream = new CaptureStream();
    const log = createLogger({ stream, level: 'info' });
    let reads = 0;
    // winston copies a line's fields into it either way; redaction and serialisation read the nested getter.
    const probe = {
      nested: {
        get field(): number {
          reads += 1;
          return 1;
        },
      },
    };
    // winston's logger is a stream: a line it writes runs the stream's machinery even when a format drops it.
    const write = log.write.bind(log);
    let writes = 0;
    log.write = (info: unknown): boolean => {
      writes += 1;
      return write(info);
    };
    log.debug('below', probe);
    areaLogger(log, 'dispatch').debug('below too', probe);
    assert.equal(reads, 0, 'a line below the level is never looked into');
    assert.equal(writes, 0, 'a line below the level is never written into the logger');
    log.level = 'debug';
    log.debug('now enabled', probe);
    areaLogger(log, 'dispatch').debug('enabled too');
    assert.equal(reads, 1);
    assert.equal(writes, 2);
    assert.deepEqual(
      stream.lines().map((l) => l['message']),
      ['now enabled', 'enabled too'],
    );
  });
});
